import json
import re

import pytest

from optimum_dpruner import ConfigError, DPrunerConfig, DPrunerWarning, MethodName
from optimum_dpruner.configuration import RUNTIME_FIELDS
from optimum_dpruner.methods import METHODS, DPrunerMethod, ObsReconstruction, build_method
from optimum_dpruner.methods.dpruner import ImportanceWeightedOBS


def test_defaults_are_the_validated_recipe_and_the_paper_preset_follows_the_method_page():
    cfg = DPrunerConfig()
    assert cfg.method == "dpruner" and cfg.sparsity == 0.5 and cfg.pattern == "unstructured"
    assert cfg.general_importance == "none" and cfg.lambda_reg == 0.0 and cfg.reconstruction is None
    assert cfg.mask_score == "saliency_x_importance" and cfg.importance_exponent == 1.0
    assert cfg.domain_weight == 0.75 and cfg.damp == 0.01 and cfg.apply_mask_to == "pretrained"
    assert cfg.gradient_checkpointing is True and cfg.block_size == 128
    paper = DPrunerConfig.paper()
    assert paper.general_importance == "sparsegpt" and paper.lambda_reg == 0.1 and paper.alpha == 1e-4
    assert paper.reconstruction == "none" and paper.mask_score == "importance"
    # without reconstruction the mask can only come from I: the paper's class alone, whatever mask_score says
    for config in (paper, DPrunerConfig(reconstruction="none")):
        assert type(build_method(config)) is DPrunerMethod
    assert type(build_method(cfg)) is ImportanceWeightedOBS
    assert type(build_method(DPrunerConfig(mask_score="importance"))) is ObsReconstruction


def test_run_time_placement_is_not_saved_as_the_recipe():
    assert RUNTIME_FIELDS == {"execution_device", "importance_device", "offload_activations", "offload_hessians",
                              "domain_parallelism", "gradient_checkpointing"}
    config = DPrunerConfig(execution_device="cpu", offload_activations=True, domain_parallelism="fsdp", sparsity=0.6)
    saved = json.loads(config.to_json_string())
    assert saved["sparsity"] == 0.6 and not RUNTIME_FIELDS & set(saved)
    assert set(saved) | RUNTIME_FIELDS == set(config.to_dict())
    # a recipe read back runs with the default placement
    assert DPrunerConfig.from_dict(saved).execution_device is None


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, "half"], ids=["negative", "one", "above-one", "string"])
def test_sparsity_must_be_in_unit_interval(sparsity):
    with pytest.raises(ConfigError, match="sparsity"):
        DPrunerConfig(sparsity=sparsity)


def test_nm_implies_sparsity_and_rejects_contradictions():
    assert DPrunerConfig(pattern="2:4").sparsity == 0.5
    assert DPrunerConfig(pattern="1:4").sparsity == 0.75
    assert DPrunerConfig(pattern="4:8", sparsity=0.5).nm == (4, 8)
    with pytest.raises(ConfigError, match="implies sparsity 0.5"):
        DPrunerConfig(pattern="2:4", sparsity=0.6)


@pytest.mark.parametrize("pattern", ["4:2", "2:2", "0:4", "a:b", "2-4"], ids=["n>m", "n=m", "n=0", "letters", "dash"])
def test_bad_patterns(pattern):
    with pytest.raises(ConfigError, match="pattern"):
        DPrunerConfig(pattern=pattern)


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        DPrunerConfig(method="obs")
    for name in ("dpruner", "sparsegpt", "wanda", "magnitude"):
        assert name in str(err.value)


def test_config_error_is_value_error():
    with pytest.raises(ValueError):
        DPrunerConfig(granularity="column")


def test_json_round_trip(tmp_path):
    cfg = DPrunerConfig(method="wanda", pattern="4:8", granularity="row", ignore=["*.o_proj"], seed=7)
    path = cfg.save_pretrained(tmp_path)
    assert json.loads(open(path).read())["pattern"] == "4:8"
    assert DPrunerConfig.from_pretrained(tmp_path) == cfg
    assert DPrunerConfig.from_pretrained(path) == cfg


@pytest.mark.parametrize("add_bos", ["auto", True, False])
def test_add_bos_round_trips_and_rejects_other_values(tmp_path, add_bos):
    assert DPrunerConfig().add_bos == "auto"
    cfg = DPrunerConfig(add_bos=add_bos)
    assert json.loads(open(cfg.save_pretrained(tmp_path)).read())["add_bos"] == add_bos
    assert DPrunerConfig.from_pretrained(tmp_path).add_bos == add_bos
    for bad in ("yes", "true", 1, None):
        with pytest.raises(ConfigError, match=rf"add_bos={bad!r} must be 'auto', True or False"):
            DPrunerConfig(add_bos=bad)


def test_unknown_keys_are_an_error_unless_saved_by_another_version(tmp_path):
    # a typo in a hand-written file must not leave the run on the default
    (tmp_path / "c.json").write_text(json.dumps({"sparsty": 0.7}))
    with pytest.raises(ConfigError, match=r"c\.json': unknown DPrunerConfig key 'sparsty' \(did you mean 'sparsity'\?\)"):
        DPrunerConfig.from_pretrained(tmp_path / "c.json")
    with pytest.raises(ConfigError, match="'sparsty'"):
        DPrunerConfig.from_dict({"sparsty": 0.7})
    # the side car of a checkpoint written by another version: its new keys are dropped with a warning
    side_car = {"config": DPrunerConfig().to_dict() | {"from_the_future": 1}, "library_versions": {"optimum-dpruner": "9.0"}}
    (tmp_path / "dpruner_config.json").write_text(json.dumps(side_car))
    with pytest.warns(DPrunerWarning, match="from_the_future"):
        cfg = DPrunerConfig.from_pretrained(tmp_path)
    assert cfg == DPrunerConfig()


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        DPrunerConfig.from_pretrained(tmp_path / "nope.json")


def test_registry_matches_method_names():
    assert set(METHODS) == {m.value for m in MethodName}


def test_docstring_documents_every_field():
    documented = set(re.findall(r"^        (\w+) \(`", DPrunerConfig.__doc__, flags=re.M))
    assert documented == set(DPrunerConfig.field_help())
    assert all(DPrunerConfig.field_help().values())


@pytest.mark.parametrize("name,value", [("damp", float("nan")), ("learning_rate", float("inf")), ("lambda_reg", -1.0),
                                        ("max_grad_norm", float("nan")), ("alpha", True)],
                         ids=["damp-nan", "learning-rate-inf", "lambda-negative", "clip-nan", "alpha-bool"])
def test_non_finite_or_negative_numbers_are_rejected(name, value):
    with pytest.raises(ConfigError, match=rf"^{name}={value!r} must be a finite non-negative number"):
        DPrunerConfig(**{name: value})


@pytest.mark.parametrize("content,message", [("[0.5]", "holds a JSON list, not an object"), ("{oops", "is not valid JSON"),
                                             ('"sparsity"', "holds a JSON str, not an object")],
                         ids=["list", "broken", "string"])
def test_config_file_that_is_not_an_object(tmp_path, content, message):
    (tmp_path / "c.json").write_text(content)
    with pytest.raises(ConfigError, match=rf"c\.json' {message}"):
        DPrunerConfig.from_pretrained(tmp_path / "c.json")


def test_from_dict_rejects_a_non_dict():
    with pytest.raises(ConfigError, match="from a dict of options, not a list"):
        DPrunerConfig.from_dict([("sparsity", 0.5)])


@pytest.mark.parametrize(
    "options,message",
    [
        ({"sparsity": False}, r"^sparsity=False must be a number in \[0, 1\), e.g. 0.5.$"),  # was: a dense model saved
        ({"sparsity": True}, r"^sparsity=True must be a number in \[0, 1\)"),
        ({"seed": "abc"}, r"^seed='abc' must be an integer in \[0, 2\*\*64\), e.g. 0.$"),  # was: RuntimeError from manual_seed
        ({"seed": 1.5}, r"^seed=1.5 must be an integer"),
        ({"seed": -1}, r"^seed=-1 must be an integer"),
        ({"text_column": 5}, r"^text_column=5 must be the name of a dataset column, e.g. 'text'.$"),
        ({"text_column": None}, r"^text_column=None must be the name of a dataset column"),  # was: caught in the data stage
        ({"importance_device": "bogus"}, r"^importance_device='bogus' is not a device name; use e.g. 'cpu', 'cuda'"),
    ],
    ids=["sparsity-false", "sparsity-true", "seed-str", "seed-float", "seed-negative", "text-column-int",
         "text-column-null", "importance-device-bogus"],
)
def test_values_of_the_wrong_type_are_refused_when_the_config_is_built(options, message):
    """Issue 31: these passed validation and failed late (or, for sparsity=False, pruned nothing)."""
    with pytest.raises(ConfigError, match=message):
        DPrunerConfig(**options)
    with pytest.raises(ConfigError, match=message):
        DPrunerConfig.from_dict(options)
    assert DPrunerConfig(seed=2**40, importance_device="cuda:1", text_column="body").seed == 2**40
