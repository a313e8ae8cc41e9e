"""Tests of `optimum-cli dpruner`, run as users run it (a subprocess on the installed command)."""
