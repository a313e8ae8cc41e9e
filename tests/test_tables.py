"""The one plain-text table printer: alignment, header rule, short rows, and the key-value block."""

from optimum_dpruner.tables import format_pairs, format_table


def test_first_column_left_others_right_with_a_rule_under_the_header():
    text = format_table([("a", 1, "2.50"), ("long name", 10, "0.1")], header=("name", "n", "x"))
    assert text.splitlines() == [
        "name        n     x",
        "---------  --  ----",
        "a           1  2.50",
        "long name  10   0.1",
    ]


def test_align_letters_and_no_rule():
    text = format_table([("a", 1, "ok"), ("bb", 22, "LOST")], header=("m", "n", "status"), align="lrl", rule=False)
    assert text.splitlines() == ["m    n  status", "a    1  ok", "bb  22  LOST"]


def test_short_rows_and_empty_tables():
    assert format_table([("only a label",), ("x", "1")]).splitlines() == ["only a label", "x             1"]
    assert format_table([]) == ""


def test_pairs_are_aligned_under_a_title():
    assert format_pairs([("model", "m"), ("target sparsity", 0.5)], title="summary").splitlines() == [
        "summary",
        "model            m",
        "target sparsity  0.5",
    ]
    assert format_pairs([], title="t") == "t"
