"""Every interpretation method, once: what it needs of a model, its parameters, and its map.

A :class:`MethodSpec` is one map method: an id (a plain identifier), a label,
what it needs (keys of :data:`NEEDS`), typed parameters (:class:`Param`) and
one function ``map(loaded, x, target, params)``. ``explain-report`` scores
:func:`report_runs`, the pages draw :func:`map_methods` with widgets built
from the parameters, the scorecard and the sanity check call
:meth:`MethodSpec.bind`: a map on a page is the map in the report.

A :class:`View` is what a page shows of a model that is not a map of a clip
(feature maps, the confusion matrix...); it states its needs the same way, so
:func:`applicable` says for every page which apply to a model and why the
others do not.

Adding a method: one file with its function, one :class:`MethodSpec` in
:data:`METHODS` (README, "Adding a method").

>>> from core.models.checkpoint import load_checkpoint
>>> from core.paths import CHECKPOINTS_DIR
>>> secnn = load_checkpoint(CHECKPOINTS_DIR / "secnn")
>>> [run.name for run in report_runs(secnn, reference=False)]
['grad-cam block1', 'grad-cam block2', 'grad-cam block3', 'grad-cam block4', 'grad-cam block5', 'energy (input itself)']
>>> for view, why in applicable(secnn, "Attention"):
...     print(f"{view.label}: {why}")  # doctest: +ELLIPSIS
attention per head: needs attention weights (an attention tap); and a token grid ...
attention rollout: needs attention weights (an attention tap); and a token grid ...
attention over time: needs attention weights over time steps ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InputError
from core.interpret import smoothgrad
from core.kinds import HEAD_FUSIONS
from core.pages import PAGE_TITLES

__all__ = ["NEEDS", "Param", "MethodSpec", "View", "Run", "METHODS", "VIEWS", "method", "provides", "applicable",
           "usable", "map_methods", "report_runs", "ENERGY"]

NEEDS = {
    "map": "a 2-D time x frequency map (a conv tap)",
    "tokens": "a token grid (a transformer's patch tokens on a declared grid)",
    "attention": "attention weights (an attention tap)",
    "sequence attention": "attention weights over time steps (an attention tap without a patch grid)",
    "gradients": "gradients from a class score to the tap",
    "vector": "any vector per clip (every model has its logits)",
    "se": "squeeze-and-excitation channel weights (an SE tap)",
    "spectrogram input": "an input laid out as (1, n_mels, n_frames) to mask cell by cell",
    "single-label": "one class per clip (a softmax model)",
    "multi-label": "several classes per clip (a sigmoid model)",
}
ENERGY = "energy (input itself)"


@dataclass(frozen=True)
class Param:
    """One parameter of a method, with its default and its range.

    Attributes
    ----------
    name : str
        Keyword of the method's function.
    label, help : str
        What a person reads beside its widget.
    default : int, float or str
    options : tuple or None
        The values it may take (a choice); ``None`` for a number in ``[low, high]``.
    low, high, step : float or None
        The range of a number and its widget's step.
    tap : bool
        A layer: the options are the model's CAM taps and the default its
        :meth:`core.models.checkpoint.Loaded.default_cam_tap`.
    """

    name: str
    label: str
    default: Any = None
    options: tuple | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    help: str = ""
    tap: bool = False

    def options_for(self, loaded) -> tuple:
        """The values this parameter may take for a model (``()`` for a number)."""
        if self.tap:
            return tuple(t.name for t in loaded.cam_taps())
        return self.options or ()

    def default_for(self, loaded):
        return loaded.default_cam_tap() if self.tap else self.default

    def check(self, value, loaded):
        """``value``, of the default's type, or an InputError naming the parameter and the allowed values."""
        options = self.options_for(loaded)
        if options or self.tap:
            if value not in options:
                raise InputError(self.name, f"{value!r} is not one of {list(options)}")
            return value
        try:
            value = type(self.default)(value)
        except (TypeError, ValueError):
            raise InputError(self.name, f"{value!r} is not a {type(self.default).__name__}") from None
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise InputError(self.name, f"must be in [{self.low:g}, {self.high:g}], got {value}")
        return value


MapFunction = Callable[..., np.ndarray]  # (loaded, x, target, **params) -> (n_mels, n_frames)


@dataclass(frozen=True)
class MethodSpec:
    """A map method.

    Attributes
    ----------
    id : str
        A plain identifier, never parsed (``"gradcam"``, ``"rollout"``).
    label : str
        What a page calls it.
    needs : tuple of str
        Keys of :data:`NEEDS`, or alternatives joined by ``|`` (``"map|tokens"``).
    map : callable
        ``map(loaded, x, target, **params) -> np.ndarray [shape=(n_mels, n_frames)]``
        in [0, 1] (any values for a :attr:`signed` method), NaN where not covered; ``x`` is the model's own input with a
        batch axis of 1 (``(1, 1, n_mels, n_frames)`` for a spectrogram model).
    params : tuple of Param
    reference : str
        The paper or library it follows.
    class_specific : bool
        Whether the map depends on the class explained.
    baseline : bool
        A map that ignores the model (the energy map): scored, never offered as an explanation.
    costly : bool
        Tens to hundreds of passes per map; ``explain-report --no-reference`` leaves it out.
    row : callable or None
        ``row(params) -> str``, the report's row name of a setting; ``None`` is the label.
    settings : callable or None
        ``settings(loaded) -> list of dict``, the settings the report scores;
        ``None`` scores the defaults.
    check : callable or None
        ``check(loaded, x, target, **params) -> str or None``: a warning about
        this map of this clip for the page (Integrated Gradients' completeness
        gap above 5 %); ``None`` has none.
    signed : bool
        ``map`` returns signed values (above 0: for the class, below: against
        it), which :meth:`explain` and :meth:`bind` scale to [0, 1]
        (:func:`core.interpret.maps.normalise_map`; the order of the cells, all
        the scores read, is the signed map's); :meth:`explain_signed` also says
        where 0 landed, so that a page draws only the part for the class.
    """

    id: str
    label: str
    needs: tuple[str, ...]
    map: MapFunction
    params: tuple[Param, ...] = ()
    reference: str = ""
    class_specific: bool = True
    baseline: bool = False
    costly: bool = False
    row: Callable[[dict], str] | None = None
    settings: Callable[[Any], list[dict]] | None = None
    check: Callable[..., str | None] | None = None
    signed: bool = False

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise InputError(f"{self.id} parameter", f"{name!r} is not one of {[p.name for p in self.params]}")

    def resolve(self, loaded, params: dict | None = None) -> dict:
        """Every parameter's value: the given ones checked, the rest at their defaults for this model."""
        params = dict(params or {})
        unknown = sorted(set(params) - {p.name for p in self.params})
        if unknown:
            raise InputError(f"{self.id} parameters", f"unknown {unknown}; known: {[p.name for p in self.params]}")
        return {p.name: p.check(params[p.name], loaded) if p.name in params else p.default_for(loaded)
                for p in self.params}

    def note(self, loaded, x, target: int, params: dict | None = None) -> str | None:
        """:attr:`check`'s warning about the map of one clip (``None``: nothing to warn of)."""
        if self.check is None:
            return None
        import torch

        return self.check(loaded, torch.as_tensor(x, dtype=torch.float32), int(target), **self.resolve(loaded, params))

    def name(self, params: dict) -> str:
        """The row name of a setting in ``explain-report``'s table."""
        return self.row(params) if self.row else self.label

    def explain(self, loaded, x, target: int, params: dict | None = None) -> np.ndarray:
        """The map of one clip for class ``target``.

        Parameters
        ----------
        loaded : core.models.checkpoint.Loaded
        x : Tensor or np.ndarray
            The model's own input with its batch axis of 1; a 2-D spectrogram
            ``(n_mels, n_frames)`` is taken as ``(1, 1, n_mels, n_frames)``.
        target : int
        params : dict or None
            Values of :attr:`params`; missing ones take their defaults.

        Returns
        -------
        np.ndarray [shape=(n_mels, n_frames)], float32 in [0, 1], NaN where not covered
        """
        return self.bind(loaded, params)(loaded.model, x, target)

    def explain_signed(self, loaded, x, target: int, params: dict | None = None) -> tuple[np.ndarray, float]:
        """:meth:`explain`'s map, and where the method's 0 lies on its [0, 1] scale (0.0 for a map that is not
        :attr:`signed`: every value above 0 is for the class).

        Returns
        -------
        tuple of (np.ndarray [shape=(n_mels, n_frames)], float in [0, 1])
        """
        raw = self._bind_raw(loaded, params)(loaded.model, x, target)
        if not self.signed:
            return raw, 0.0
        from core.interpret.maps import normalise_map, zero_level

        return normalise_map(raw).numpy(), zero_level(raw)

    def bind(self, loaded, params: dict | None = None) -> Callable:
        """``explain(model, x, target) -> map`` with the parameters fixed, for any model of the same
        architecture (the sanity check passes randomised copies)."""
        raw = self._bind_raw(loaded, params)
        if not self.signed:
            return raw

        def explain(model, x, target):
            from core.interpret.maps import normalise_map

            return normalise_map(raw(model, x, target)).numpy()

        return explain

    def _bind_raw(self, loaded, params: dict | None = None) -> Callable:
        """:attr:`map` with the parameters fixed, as it comes (signed for a :attr:`signed` method)."""
        import torch

        values = self.resolve(loaded, params)

        def explain(model, x, target):
            x = torch.as_tensor(x, dtype=torch.float32)
            if x.ndim == 2:  # a spectrogram
                x = x[None, None]
            if x.ndim < 3 or x.shape[0] != 1:
                raise InputError("x", f"expected one clip with its batch axis, got shape {tuple(x.shape)}")
            own = loaded if model is loaded.model else dataclasses.replace(loaded, model=model)
            return np.asarray(self.map(own, x, int(target), **values), dtype=np.float32)

        return explain


@dataclass(frozen=True)
class View:
    """What a page shows of a model that is not a map of one clip, and what it needs."""

    id: str
    label: str
    page: str
    needs: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """One method at one setting, as ``explain-report`` scores it."""

    spec: MethodSpec
    params: dict

    @property
    def name(self) -> str:
        return self.spec.name(self.params)

    def bind(self, loaded) -> Callable:
        return self.spec.bind(loaded, self.params)


# ---------------------------------------------------------------------------
# the maps: each imports its own module when first called (the app imports this registry at its cold start,
# before torch)


def _gradcam(loaded, x, target, *, tap):
    from core.interpret.gradcam import GradCAM

    return GradCAM(loaded.model, [tap]).maps(x, target=target, shape=loaded.map_shape)[tap][0]


def _gradcam_settings(loaded) -> list[dict]:
    if "tokens" in provides(loaded):  # the last token layer's map is always empty: the one before it
        return [{"tap": loaded.default_cam_tap()}]
    return [{"tap": t.name} for t in loaded.taps("conv")]


def _rollout(loaded, x, target, *, head_fusion, discard_ratio):
    from core.interpret.rollout import model_rollout

    return model_rollout(loaded.model, x, head_fusion=head_fusion, discard_ratio=discard_ratio)[0]


def _rollout_row(params: dict) -> str:
    fusion, discard = params["head_fusion"], params["discard_ratio"]
    return f"rollout ({fusion})" if discard == 0 else f"rollout ({fusion}, discard {discard:g})"


def _attention_relevance(loaded, x, target):
    from core.interpret.attention_relevance import model_attention_relevance

    return model_attention_relevance(loaded.model, x, target=target)[0]


def _last_attention(loaded, x, target):
    from core.interpret.last_attention import model_last_attention

    return model_last_attention(loaded.model, x)[0]


def _integrated_gradients(loaded, x, target, *, n_steps):
    from core.interpret.integrated_gradients import integrated_gradients

    return integrated_gradients(loaded.model, x, target=target, n_steps=n_steps)  # signed


def _integrated_gradients_check(loaded, x, target, *, n_steps):
    from core.interpret.integrated_gradients import completeness_gap, completeness_note, integrated_gradients

    attributions = integrated_gradients(loaded.model, x, target=target, n_steps=n_steps)
    return completeness_note(completeness_gap(loaded.model, x, attributions, target=target), n_steps=n_steps)


def _occlusion(loaded, x, target, *, window):
    from core.interpret.faithfulness import model_predictor
    from core.interpret.occlusion import occlusion

    return occlusion(model_predictor(loaded.model), x[0, 0].detach().numpy(), target=target, window=window)  # signed


def _energy(loaded, x, target):
    from core.interpret.baselines import energy_map

    return energy_map(x[0, 0].detach().numpy())


TAP = Param("tap", "Layer (tap)", tap=True,
            help="Deeper layers see larger, more abstract patterns. A transformer's last layer always gives an empty map.")
HEAD_FUSION = Param("head_fusion", "Head fusion", "mean", options=HEAD_FUSIONS,
                    help="How the heads of a layer are combined: their mean, max or min.")
DISCARD = Param("discard_ratio", "Discard weakest links", 0.0, low=0.0, high=0.95, step=0.05,
                help="Share of the weakest attention links dropped in each layer.")

METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("rollout", "attention rollout", ("attention", "tokens"), _rollout, (HEAD_FUSION, DISCARD),
               reference="Abnar & Zuidema, 2020", class_specific=False, row=_rollout_row,
               settings=lambda loaded: [{"head_fusion": "mean", "discard_ratio": 0.0},
                                        {"head_fusion": "max", "discard_ratio": 0.9}]),
    MethodSpec("attention-gradient", "attention × gradient (Chefer)", ("attention", "tokens", "gradients"),
               _attention_relevance, reference="Chefer, Gur & Wolf, 2021"),
    MethodSpec("last-attention", "attention (last layer)", ("attention", "tokens"), _last_attention,
               class_specific=False),
    MethodSpec("gradcam", "Grad-CAM", ("gradients", "map|tokens"), _gradcam, (TAP,),
               reference="Selvaraju et al., 2017", row=lambda params: f"grad-cam {params['tap']}",
               settings=_gradcam_settings),
    MethodSpec("integrated-gradients", "integrated gradients", ("gradients", "spectrogram input"),
               _integrated_gradients, (Param("n_steps", "Integration steps", 32, low=2, high=256, step=1),),
               reference="Sundararajan, Taly & Yan, 2017", costly=True, check=_integrated_gradients_check, signed=True),
    MethodSpec("occlusion", "occlusion", ("spectrogram input",), _occlusion,
               (Param("window", "Block size (bands and frames)", 16, low=1, high=128, step=1),),
               reference="Zeiler & Fergus, 2014", costly=True, signed=True),
    MethodSpec("smoothgrad", "SmoothGrad", ("gradients", "spectrogram input"), smoothgrad.explain,
               (Param("n_samples", "Noisy copies", 16, low=1, high=64, step=1),
                Param("noise", "Noise (share of the input's range)", 0.15, low=0.0, high=0.5, step=0.05)),
               reference="Smilkov et al., 2017", costly=True),
    MethodSpec("energy", ENERGY, ("spectrogram input",), _energy, class_specific=False, baseline=True),
)

VIEWS: tuple[View, ...] = (
    View("feature-maps", "feature maps", "Layers", ("map|tokens",)),
    View("se-weights", "SE channel weights", "Layers", ("se",)),
    View("attention-heads", "attention per head", "Attention", ("attention", "tokens")),
    View("attention-rollout", "attention rollout", "Attention", ("attention", "tokens")),
    View("attention-time", "attention over time", "Attention", ("sequence attention",)),
    View("deletion-curve", "deletion curve", "Attribution", ("gradients", "map|tokens", "spectrogram input")),
    View("listen", "the map as sound (kept and removed cells)", "Attribution", ("gradients", "map|tokens")),
    View("embedding-projection", "embedding projection", "Embeddings", ("vector",)),
    View("decoders", "NMF-style decoders", "Decoders", ("map|tokens", "spectrogram input")),
    View("confusion-matrix", "confusion matrix", "Errors", ("single-label",)),
    View("average-precision", "per-class average precision", "Errors", ("vector",)),
)
assert {v.page for v in VIEWS} <= set(PAGE_TITLES), "a view names a page that does not exist"


def method(method_id: str) -> MethodSpec:
    """The method with this id; an InputError lists the ids."""
    for spec in METHODS:
        if spec.id == method_id:
            return spec
    raise InputError("method", f"{method_id!r} is not one of {[m.id for m in METHODS]}")


def provides(loaded) -> set[str]:
    """What a loaded model offers, as keys of :data:`NEEDS`."""
    kinds = {t.kind for t in loaded.taps()}
    out = {"vector", "gradients"}
    if "conv" in kinds:
        out.add("map")
    if "tokens" in kinds and getattr(loaded.model, "grid", None) is not None:
        out.add("tokens")
    if "attention" in kinds:
        out.add("attention")
        if "tokens" not in out:
            out.add("sequence attention")
    if "se" in kinds:
        out.add("se")
    if loaded.layout == "mel-time":
        out.add("spectrogram input")
    out.add("multi-label" if loaded.multi_label else "single-label")
    return out


def _missing(needs: tuple[str, ...], have: set[str]) -> list[str]:
    return [need for need in needs if not set(need.split("|")) & have]


def _reason(missing: list[str]) -> str:
    return "needs " + "; and ".join(" or ".join(NEEDS[n] for n in need.split("|")) for need in missing)


def applicable(loaded, page: str | None = None, *, name_model: bool = True) -> list[tuple[View | MethodSpec, str | None]]:
    """Each view of ``page`` (or of every page) and, on the Attribution page, each map method (baselines aside),
    with ``None`` when it applies, else the reason it doesn't.

    With ``name_model``, each reason ends by saying which model (kind and input layout) lacks it.
    """
    have = provides(loaded)
    items = [m for m in METHODS if not m.baseline] if page in (None, "Attribution") else []
    items += [v for v in VIEWS if page is None or v.page == page]
    out = []
    for item in items:
        missing = _missing(item.needs, have)
        reason = None
        if missing:
            reason = _reason(missing)
            if name_model:
                reason += f" (this model, {loaded.kind or '?'} with {loaded.layout} input, has not)"
        out.append((item, reason))
    return out


def usable(loaded, page: str) -> list[str]:
    """Labels of what applies to the model on ``page``."""
    return [item.label for item, why in applicable(loaded, page) if why is None]


def map_methods(loaded, *, baselines: bool = False) -> list[MethodSpec]:
    """The map methods that apply to the model, in :data:`METHODS`' order."""
    have = provides(loaded)
    return [m for m in METHODS if (baselines or not m.baseline) and not _missing(m.needs, have)]


def report_runs(loaded, *, reference: bool = True, params: dict[str, dict] | None = None) -> list[Run]:
    """What ``explain-report`` scores for this model, in the table's order, the energy baseline last.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    reference : bool
        Include the costly model-agnostic methods (``MethodSpec.costly``).
    params : dict or None
        Method id -> parameter values that replace the defaults in every setting
        (``{"integrated-gradients": {"n_steps": 16}}``).
    """
    runs = []
    for spec in map_methods(loaded, baselines=True):
        if spec.costly and not reference:
            continue
        for setting in (spec.settings(loaded) if spec.settings else [{}]):
            runs.append(Run(spec, spec.resolve(loaded, {**setting, **(params or {}).get(spec.id, {})})))
    return sorted(runs, key=lambda run: run.spec.baseline)
