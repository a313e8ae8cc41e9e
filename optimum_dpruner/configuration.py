"""`DPrunerConfig`: every option of a pruning run, validated, saved and loaded as JSON.

This module imports only the standard library so that the CLI can build its flags without torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import ConfigError, DPrunerWarning

__all__ = ["DPrunerConfig", "MethodName", "Granularity", "FIELD_CHOICES", "CONFIG_NAME", "RUNTIME_FIELDS", "parse_pattern"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "dpruner_config.json"


class MethodName(str, Enum):
    """Names of the pruning methods; the registry, the CLI and the config all use these strings."""

    DPRUNER = "dpruner"
    SPARSEGPT = "sparsegpt"
    WANDA = "wanda"
    MAGNITUDE = "magnitude"


class Granularity(str, Enum):
    """Comparison group within which the lowest scores are pruned."""

    LAYER = "layer"  # one threshold per weight matrix
    ROW = "row"  # one threshold per output row (Wanda)
    BLOCK = "block"  # one threshold per block of `block_size` input columns (SparseGPT, D-Pruner "iterative blocking")


#: The values of the string fields that take one of a fixed set (`None`, where a field allows it, means "the
#: method's"); `_validate` checks them and the CLI declares them as its flags' choices.
FIELD_CHOICES: dict[str, tuple[str, ...]] = {
    "method": tuple(m.value for m in MethodName),
    "granularity": tuple(g.value for g in Granularity),
    "general_importance": ("sparsegpt", "obs", "none"),
    "reconstruction": ("obs", "none"),
    "mask_score": ("saliency_x_importance", "importance"),
    "apply_mask_to": ("pretrained", "finetuned"),
    "importance_dtype": ("float32", "bfloat16"),
    "domain_parallelism": ("ddp", "fsdp"),
}


def _choices(enum_cls: type[Enum]) -> str:
    return ", ".join(repr(m.value) for m in enum_cls)


def _library_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("optimum-dpruner")
    except PackageNotFoundError:
        return None



def parse_pattern(pattern: Any) -> tuple[int, int] | None:
    """`(N, M)` of an `"N:M"` sparsity pattern, `None` for `"unstructured"`.

    Raises:
        `ConfigError`: anything else, or N:M without 0 < N < M.
    """
    if pattern == "unstructured":
        return None
    try:
        n, m = (int(p) for p in str(pattern).split(":"))
    except ValueError:
        raise ConfigError(f"pattern={pattern!r} must be 'unstructured' or 'N:M' with integers N < M, e.g. '2:4'.") from None
    if not 0 < n < m:
        raise ConfigError(f"pattern={pattern!r} needs 0 < N < M, e.g. '2:4' or '4:8'.")
    return n, m

@dataclass
class DPrunerConfig:
    """Configuration of a pruning run (D-Pruner or one of the baselines).

    Args:
        method (`str`, *optional*, defaults to `"dpruner"`):
            Pruning method: `"dpruner"`, `"sparsegpt"`, `"wanda"` or `"magnitude"`.
        sparsity (`float`, *optional*):
            Fraction of zeros in every target matrix, in [0, 1). Defaults to 0.5, or to 1 - N/M for an N:M pattern.
        pattern (`str`, *optional*, defaults to `"unstructured"`):
            `"unstructured"` or `"N:M"` (e.g. `"2:4"`: keep the N highest-scored of every M consecutive input weights).
        granularity (`str`, *optional*):
            Comparison group for unstructured masks: `"layer"`, `"row"` or `"block"`. Defaults to the method's own
            (magnitude and D-Pruner: layer, Wanda: row, SparseGPT: block).
        block_size (`int`, *optional*, defaults to 128):
            Columns per block, for `granularity="block"` and SparseGPT's lazy OBS updates.
        targets (`list[str]`, *optional*):
            fnmatch patterns of module names (relative to the model) to prune. Defaults to every `nn.Linear` inside
            the decoder blocks.
        ignore (`list[str]`, *optional*, defaults to `[]`):
            fnmatch patterns of module names never to prune, applied after `targets`.
        num_samples (`int`, *optional*, defaults to 32):
            Number of general calibration sequences.
        seq_len (`int`, *optional*, defaults to 512):
            Tokens per calibration sequence (general and domain).
        domain_num_samples (`int`, *optional*, defaults to 32):
            Number of domain calibration sequences (D-Pruner's gradient stage, and the domain side of mixed
            statistics); chosen on validation text (benchmarks/README.md).
        text_column (`str`, *optional*, defaults to `"text"`):
            Column holding the text in calibration datasets.
        add_bos (`str` or `bool`, *optional*, defaults to `"auto"`):
            Start every calibration sequence with the tokenizer's BOS token (followed by `seq_len - 1` text tokens):
            `"auto"` when the tokenizer puts one before an encoded text (LLaMA, Mistral, Gemma; not SmolLM2, whose
            windows are unchanged), `True` always, `False` never. Models trained with a BOS at position 0 get one
            there in use, so calibration statistics are gathered on such inputs.
        seed (`int`, *optional*, defaults to 0):
            Seed for calibration sampling and everything random in the run.
        damp (`float`, *optional*, defaults to 0.01):
            Hessian damping as a fraction of its mean diagonal (SparseGPT and D-Pruner's general importance).
        general_importance (`str`, *optional*, defaults to `"none"`):
            D-Pruner's separate general stage G (used only by the paper's regulariser): `"sparsegpt"` (saliency taken
            while SparseGPT prunes, as the authors), `"obs"` (the same saliency on the unmodified weights, no OBS
            updates) or `"none"` (no general stage; then `lambda_reg` must be 0). The default recipe needs no G: it
            takes the general side from the mixed Hessian of the reconstruction pass.
        domain_weight (`float`, *optional*, defaults to 0.75):
            Share of the domain windows in the mixed calibration statistics (Hessian, input norms), per token: 0 =
            general windows only, 1 = domain windows only. Used when a baseline gets `domain_ds` as well (calibration
            mixing, MixCal) and by D-Pruner's reconstruction pass; chosen on validation text (benchmarks/README.md).
        reconstruction (`str`, *optional*):
            `"obs"`: after the mask is chosen, the surviving weights of each block are updated by OBS on the (mixed)
            Hessian, pruned outputs propagated (fixed-mask reconstruction); `"none"`: the mask is applied alone.
            Defaults to the method's: SparseGPT and D-Pruner reconstruct, Wanda and magnitude do not.
        mask_score (`str`, *optional*, defaults to `"saliency_x_importance"`):
            D-Pruner's mask when it reconstructs: `"saliency_x_importance"`, chosen inside the reconstruction pass as
            SparseGPT does, from the OBS saliency under the mixed Hessian times (I / mean I)^`importance_exponent`;
            or `"importance"`, the lowest domain importance I per comparison group, the survivors then updated.
            Without reconstruction (`reconstruction="none"`, the paper) the mask is always I's.
        importance_exponent (`float`, *optional*, defaults to 1.0):
            gamma of the `"saliency_x_importance"` score; 0 makes the pass plain SparseGPT on the mixed windows;
            chosen on validation text (benchmarks/README.md).
        lambda_reg (`float`, *optional*, defaults to 0.0):
            Weight of the paper's generality-preserving regulariser; at this library's gradient scale its term is
            about 1e-12 of the gradient (the report's `regulariser_ratio_mean` says how large it is in a run). It
            has no measurable effect on SmolLM2: even at 1e13, where the term is 86x the gradient, general and
            medical validation perplexity moved by under 1% (`benchmarks/results/tune_dpruner.json`; legal text
            was not measured).
        alpha (`float`, *optional*, defaults to 1e-4):
            Step size in the regulariser when weights are not updated (`learning_rate=0`).
        learning_rate (`float`, *optional*, defaults to 0.0):
            SGD learning rate of the domain stage; 0 scores at the pretrained weights in one pass.
        domain_epochs (`int`, *optional*, defaults to 1):
            Passes over the domain data in the domain stage.
        max_grad_norm (`float`, *optional*, defaults to 1.0):
            Gradient-norm clipping of the SGD updates (0 disables it).
        apply_mask_to (`str`, *optional*, defaults to `"pretrained"`):
            Which weights D-Pruner's mask zeroes: `"pretrained"` or `"finetuned"`.
        domain_batch_size (`int`, *optional*, defaults to 1):
            Sequences per step in the domain stage.
        importance_dtype (`str`, *optional*, defaults to `"float32"`):
            Storage dtype of D-Pruner's G and I: `"float32"` or `"bfloat16"`.

    Run-time placement (where and how a run executes, not what it computes; never saved with a checkpoint or
    scores, see `RUNTIME_FIELDS`):
        gradient_checkpointing (`bool`, *optional*, defaults to `True`):
            Use gradient checkpointing in the domain stage.
        importance_device (`str`, *optional*):
            Device of G and I; defaults to each weight's device (`"cpu"` saves accelerator memory).
        execution_device (`str`, *optional*):
            Device the block-by-block stages compute on. Defaults to the device of the model's input embeddings.
            When the model lives elsewhere (e.g. loaded in CPU RAM, `execution_device="cuda"`), the block-wise stages
            (baselines, D-Pruner's G) move each decoder block there only while it is processed; D-Pruner's gradient
            stage moves the whole model there for its duration.
        offload_activations (`bool`, *optional*, defaults to `False`):
            Keep the calibration activations between blocks in CPU RAM instead of on the execution device.
        offload_hessians (`bool`, *optional*, defaults to `False`):
            Keep SparseGPT's Hessians in CPU RAM between calibration batches (moved to the execution device to be
            updated and used).
        domain_parallelism (`str`, *optional*, defaults to `"ddp"`):
            How the domain gradient stage uses several processes (`accelerate launch`): `"ddp"`, each process holds
            the whole model on its execution device; `"fsdp"`, the model stays where it was loaded and each
            process holds 1/N of it, sharded with FSDP2 (for models that fit no single device). One process: ignored.
    """

    method: str = field(default="dpruner", metadata={"help": "Pruning method: " + _choices(MethodName) + "."})
    sparsity: float | None = field(
        default=None, metadata={"help": "Fraction of zeros per target matrix in [0, 1); default 0.5 or 1-N/M."}
    )
    pattern: str = field(default="unstructured", metadata={"help": "'unstructured' or 'N:M' (e.g. '2:4')."})
    granularity: str | None = field(
        default=None, metadata={"help": "Comparison group: " + _choices(Granularity) + "; default: the method's."}
    )
    block_size: int = field(default=128, metadata={"help": "Columns per block (block granularity, SparseGPT)."})
    targets: list[str] | None = field(
        default=None, metadata={"help": "fnmatch patterns of modules to prune; default: every Linear in the blocks."}
    )
    ignore: list[str] = field(default_factory=list, metadata={"help": "fnmatch patterns of modules never pruned."})
    num_samples: int = field(default=32, metadata={"help": "Number of general calibration sequences."})
    seq_len: int = field(default=512, metadata={"help": "Tokens per calibration sequence."})
    domain_num_samples: int = field(default=32, metadata={"help": "Number of domain calibration sequences."})
    text_column: str = field(default="text", metadata={"help": "Column holding the text in calibration datasets."})
    add_bos: str | bool = field(
        default="auto",
        metadata={"help": "Start each calibration sequence with the tokenizer's BOS: 'auto' (when the tokenizer adds one), true or false."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for sampling and everything random."})
    damp: float = field(default=0.01, metadata={"help": "Hessian damping, fraction of the mean diagonal."})
    general_importance: str = field(
        default="none",
        metadata={"help": "D-Pruner's general stage G: 'sparsegpt' (with OBS updates), 'obs' (no updates) or 'none'."},
    )
    domain_weight: float = field(
        default=0.75, metadata={"help": "Share of the domain windows in mixed calibration statistics, in [0, 1]."}
    )
    reconstruction: str | None = field(
        default=None, metadata={"help": "'obs' (OBS update of the surviving weights) or 'none'; default: the method's."}
    )
    mask_score: str = field(
        default="saliency_x_importance",
        metadata={"help": "D-Pruner's mask when it reconstructs: 'saliency_x_importance' or 'importance' (I alone); "
                          "without reconstruction it is I's."},
    )
    importance_exponent: float = field(
        default=1.0, metadata={"help": "gamma in D-Pruner's saliency x (I / mean I)^gamma mask score."}
    )
    lambda_reg: float = field(default=0.0, metadata={"help": "Weight of the generality-preserving regulariser."})
    alpha: float = field(default=1e-4, metadata={"help": "Regulariser step size when learning_rate is 0."})
    learning_rate: float = field(default=0.0, metadata={"help": "SGD learning rate of the domain stage (0: no update)."})
    domain_epochs: int = field(default=1, metadata={"help": "Passes over the domain data."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient-norm clipping of SGD updates (0: off)."})
    apply_mask_to: str = field(
        default="pretrained", metadata={"help": "Weights the D-Pruner mask zeroes: 'pretrained' or 'finetuned'."}
    )
    gradient_checkpointing: bool = field(default=True, metadata={"runtime": True, "help": "Gradient checkpointing in the domain stage."})
    domain_batch_size: int = field(default=1, metadata={"help": "Sequences per step in the domain stage."})
    importance_dtype: str = field(default="float32", metadata={"help": "Dtype of G and I: 'float32' or 'bfloat16'."})
    importance_device: str | None = field(
        default=None, metadata={"runtime": True, "help": "Device of G and I; default: the weight's device."}
    )
    execution_device: str | None = field(
        default=None, metadata={"runtime": True, "help": "Device the block-wise stages compute on; blocks are moved there one at a time."}
    )
    offload_activations: bool = field(
        default=False, metadata={"runtime": True, "help": "Keep calibration activations in CPU RAM between blocks."}
    )
    offload_hessians: bool = field(default=False, metadata={"runtime": True, "help": "Keep SparseGPT Hessians in CPU RAM between batches."})
    domain_parallelism: str = field(
        default="ddp", metadata={"runtime": True, "help": "Several processes in the domain stage: 'ddp' (whole model each) or 'fsdp' (sharded)."}
    )

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        import re

        valid_methods = [m.value for m in MethodName]
        if self.method not in valid_methods:
            raise ConfigError(f"method={self.method!r} is unknown; choose one of {', '.join(valid_methods)}.")
        nm = self.nm
        if nm is not None:
            implied = 1.0 - nm[0] / nm[1]
            if self.sparsity is None:
                self.sparsity = implied
            elif abs(self.sparsity - implied) > 1e-9:
                raise ConfigError(
                    f"sparsity={self.sparsity} contradicts pattern={self.pattern!r}, which implies sparsity "
                    f"{implied:g}; drop sparsity or set it to {implied:g}."
                )
        elif self.sparsity is None:
            self.sparsity = 0.5
        if isinstance(self.sparsity, bool) or not isinstance(self.sparsity, (int, float)) or not 0.0 <= float(self.sparsity) < 1.0:
            raise ConfigError(f"sparsity={self.sparsity!r} must be a number in [0, 1), e.g. 0.5.")
        self.sparsity = float(self.sparsity)
        if self.granularity is not None and self.granularity not in [g.value for g in Granularity]:
            raise ConfigError(f"granularity={self.granularity!r} is unknown; choose one of {_choices(Granularity)}.")
        for name in ("block_size", "num_samples", "seq_len", "domain_num_samples", "domain_epochs", "domain_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r} must be a positive integer.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**64:
            raise ConfigError(f"seed={self.seed!r} must be an integer in [0, 2**64), e.g. 0.")
        if not isinstance(self.text_column, str) or not self.text_column.strip():
            raise ConfigError(f"text_column={self.text_column!r} must be the name of a dataset column, e.g. 'text'.")
        for name in ("damp", "lambda_reg", "alpha", "learning_rate", "max_grad_norm"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name}={value!r} must be a finite non-negative number, e.g. {_DEFAULTS[name]}.")
        if self.general_importance not in FIELD_CHOICES["general_importance"]:
            raise ConfigError(f"general_importance={self.general_importance!r} must be 'sparsegpt', 'obs' or 'none'.")
        value = self.domain_weight
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"domain_weight={value!r} must be a number in [0, 1], e.g. 0.5.")
        self.domain_weight = float(value)
        if isinstance(self.importance_exponent, bool) or not isinstance(self.importance_exponent, (int, float)) or \
                not math.isfinite(self.importance_exponent) or self.importance_exponent < 0:
            raise ConfigError(f"importance_exponent={self.importance_exponent!r} must be a finite number >= 0, e.g. 0.5.")
        if self.reconstruction is not None and self.reconstruction not in FIELD_CHOICES["reconstruction"]:
            raise ConfigError(f"reconstruction={self.reconstruction!r} must be 'obs' or 'none'.")
        if self.general_importance == "none" and self.lambda_reg > 0:
            raise ConfigError(f"lambda_reg={self.lambda_reg} needs the general stage G; set lambda_reg=0 or "
                              "general_importance='sparsegpt'.")
        if self.mask_score not in FIELD_CHOICES["mask_score"]:
            raise ConfigError(f"mask_score={self.mask_score!r} must be 'importance' or 'saliency_x_importance'.")
        if self.apply_mask_to not in FIELD_CHOICES["apply_mask_to"]:
            raise ConfigError(f"apply_mask_to={self.apply_mask_to!r} must be 'pretrained' or 'finetuned'.")
        if self.domain_parallelism not in FIELD_CHOICES["domain_parallelism"]:
            raise ConfigError(f"domain_parallelism={self.domain_parallelism!r} must be 'ddp' or 'fsdp'.")
        if self.importance_dtype not in FIELD_CHOICES["importance_dtype"]:
            raise ConfigError(f"importance_dtype={self.importance_dtype!r} must be 'float32' or 'bfloat16'.")
        for name in ("importance_device", "execution_device"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{name}={value!r} must be a device name such as 'cpu', 'cuda' or 'cuda:1', or None.")
        device = self.importance_device  # torch.device("bogus") raised a bare RuntimeError once the stage started
        if device is not None and not re.fullmatch(
            r"(cpu|cuda|mps|xpu|hpu|npu|meta|mtia|xla|privateuseone)(:\d+)?|\d+", device.strip()
        ):
            raise ConfigError(f"importance_device={device!r} is not a device name; use e.g. 'cpu', 'cuda' or 'cuda:1', or None.")
        if not (isinstance(self.add_bos, bool) or self.add_bos == "auto"):
            raise ConfigError(f"add_bos={self.add_bos!r} must be 'auto', True or False.")
        for name in ("offload_activations", "offload_hessians", "gradient_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be True or False.")
        if self.targets is not None and (isinstance(self.targets, str) or not all(isinstance(t, str) for t in self.targets)):
            raise ConfigError(f"targets={self.targets!r} must be a list of module-name patterns, e.g. ['*.mlp.*'].")
        if isinstance(self.ignore, str) or not all(isinstance(t, str) for t in self.ignore):
            raise ConfigError(f"ignore={self.ignore!r} must be a list of module-name patterns, e.g. ['*.o_proj'].")
        if self.apply_mask_to == "finetuned" and self.learning_rate == 0:
            warnings.warn(
                "apply_mask_to='finetuned' with learning_rate=0 is the same as 'pretrained': no weight is updated.",
                DPrunerWarning,
                stacklevel=3,
            )

    @classmethod
    def paper(cls, **overrides: Any) -> "DPrunerConfig":
        """D-Pruner exactly as the paper describes it: G from a SparseGPT pass on general text, the regularised
        domain gradient (lambda = 0.1, alpha = 1e-4), the mask from I alone, no reconstruction. The calibration sizes
        stay this library's (the paper: 128 x 2048 general tokens, ~1000 domain texts); `overrides` change any field.

        Example:
            ```python
            DPrunerConfig.paper(sparsity=0.6)
            ```
        """
        values = dict(method="dpruner", general_importance="sparsegpt", lambda_reg=0.1, alpha=1e-4,
                      reconstruction="none", mask_score="importance", learning_rate=0.0)
        values.update(overrides)
        return cls(**values)

    @property
    def nm(self) -> tuple[int, int] | None:
        """`(N, M)` for an N:M pattern, `None` for unstructured. Raises `ConfigError` on a malformed pattern."""
        return parse_pattern(self.pattern)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """The options as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_recipe_dict(self) -> dict[str, Any]:
        """The options that decide what a run computes: `to_dict()` less the run-time placement (`RUNTIME_FIELDS`).
        This is what a checkpoint and saved scores record."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_FIELDS}

    def to_json_string(self) -> str:
        """The recipe (`to_recipe_dict`) as sorted JSON."""
        return json.dumps(self.to_recipe_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], strict: bool = True) -> "DPrunerConfig":
        """Build a config from a dict.

        Args:
            data (`dict`): field name -> value.
            strict (`bool`, *optional*, defaults to `True`): an unknown key raises `ConfigError` (a typo such as
                `"sparsty"` must not leave the run on the default); with `False` unknown keys are dropped with a
                warning (configs saved by another version of the library).

        Raises:
            `ConfigError`: `data` is not a dict, holds an unknown key (when `strict`), or a value is invalid.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a DPrunerConfig must be built from a dict of options, not a {type(data).__name__}.")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown and strict:
            hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, known, 1)) else repr(k)
                     for k in unknown]
            raise ConfigError(
                f"unknown DPrunerConfig key {', '.join(hints)}; fix or drop it (the options are listed by "
                "'optimum-cli dpruner prune --help' and DPrunerConfig.field_help())."
            )
        if unknown:
            warnings.warn(f"Ignoring unknown DPrunerConfig keys: {', '.join(unknown)}.", DPrunerWarning, stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in known})

    def save_pretrained(self, save_directory: str | os.PathLike) -> str:
        """Write `dpruner_config.json` into `save_directory` (created if needed) and return its path."""
        os.makedirs(save_directory, exist_ok=True)
        path = os.path.join(save_directory, CONFIG_NAME)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())
        return path

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> "DPrunerConfig":
        """Load a config from a JSON file or from a folder holding `dpruner_config.json`.

        A `dpruner_config.json` written by `save_pretrained` of a pruned model holds the config under the key
        `"config"`; that layout is accepted too. Unknown keys are an error, except in a `dpruner_config.json`
        written by another version of optimum-dpruner, where they are dropped with a warning.

        Raises:
            `ConfigError`: the file is missing, is not a JSON object, or holds an unknown key or an invalid value.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_NAME)
        if not os.path.isfile(path):
            raise ConfigError(f"config path {path!r} does not exist; pass a JSON file or a folder with {CONFIG_NAME}.")
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
                raise ConfigError(f"config file {path!r} is not valid JSON: {e}.") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"config file {path!r} holds a JSON {type(data).__name__}, not an object; write the options as "
                '{"sparsity": 0.5, ...}.'
            )
        strict = True
        if isinstance(data.get("config"), dict):  # the side car of a pruned model
            written_by = (data.get("library_versions") or {}).get("optimum-dpruner")
            strict = written_by is None or written_by == _library_version()
            data = data["config"]
        try:
            return cls.from_dict(data, strict=strict)
        except ConfigError as e:
            raise ConfigError(f"config file {path!r}: {e}") from None

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Help text of every field, for CLI flags and docs."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DPrunerConfig)}
RUNTIME_FIELDS = frozenset(f.name for f in dataclasses.fields(DPrunerConfig) if f.metadata.get("runtime"))
