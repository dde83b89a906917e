"""A run's model as an ONNX file, for onnxruntime and the runtimes that read ONNX (in browsers, on phones).

The graph takes what a person has at hand: ``pixels``, **uint8 N×1×28×28, 0–255,
the object bright on a dark background** like the dataset's images (what
``prepare_photo`` makes of a photo). It scales them to [0, 1] as the training
pipeline does (the same for every family), then runs the family's own graph
(``MnistlabModel.onnx_graph``: any standardisation it applies, its layers, softmax)
and gives ``probabilities``, float32 N×classes, in the order of the class names.

The model's ``metadata_props`` say what it is: ``mnistlab.format`` (and
``mnistlab.format_version``), ``classes`` (JSON list of names, by label),
``dataset``, ``photo_convention`` (JSON: how a photo is converted for this
dataset), ``input``, ``family``, ``run``, ``mnistlab_version``, ``check`` (how
the export was checked against the model) and ``mnistlab.sha256``, a digest of
the graph and the other entries.

Reading a file (``read_onnx``) checks it as ``load_model`` checks a model file:
a bounded size, tensors inside the file (no external data), only ONNX's own
operators, ``onnx.checker``, mnistlab's metadata, the input and output above,
and the digest — so a foreign, damaged or tampered file is one
``ModelFileError`` before onnxruntime runs it. This module loads neither
scikit-learn nor PyTorch: the web page's ONNX workers predict with it alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes, parse_json, read_regular_file
from .._version import __version__
from ..data.preprocess import flatten_scale
from ..data.registry import IMAGE_SIDE
from ..errors import ExportError, ModelFileError, one_line, printable
from ..models.serialization import MAX_MODEL_BYTES
from ..run_config import read_config
from .photo import STYLES, prepare_photo
from .predictor import Prediction, _source_name, prediction_of

FORMAT, FORMAT_VERSION = "mnistlab-onnx", "1"
ONNX_FILE = "model.onnx"  # in the run folder, unless the export is written elsewhere
INPUT = "pixels"
DIGEST = "mnistlab.sha256"
PARITY_TOLERANCE = 1e-4  # the largest difference of a probability allowed between the export and the model
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")  # ONNX's operators, and ONNX-ML's (trees, SVMs, scalers …)
INPUT_TEXT = (f"{INPUT}: uint8 N×1×28×28, 0–255, the object bright on a dark background like the dataset's "
              "images (mnistlab's prepare_photo converts a photo so); output probabilities: float32 N×classes")


def require_onnx() -> None:
    """ExportError, saying what to install, unless onnx and onnxruntime are installed.

    Only looked up, not imported: the web server asks, and only its workers load them.
    """
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"ONNX needs the onnx and onnxruntime packages ({' and '.join(missing)} missing): "
                          "pip install 'mnistlab[onnx]'")


# --- writing ---------------------------------------------------------------------------

def photo_convention(dataset: str) -> dict:
    """How a photo becomes an input for a model of ``dataset``, as data (from the photo conversion's table)."""
    convention = {"dataset": dataset, "object": "bright on a dark background (0), as the dataset's images"}
    style = STYLES.get(dataset)
    if style is not None:
        convention.update({name: getattr(value, "name", value) for name, value in vars(style).items()})
    return convention


def _with_pixel_input(family_model):
    """The family's graph (input float32 N×784 in [0, 1]) behind the scaling of uint8 N×1×28×28 pixels."""
    from onnx import TensorProto, helper, numpy_helper

    graph = family_model.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(f"the model's ONNX graph has {len(graph.input)} inputs and {len(graph.output)} outputs, "
                          "not one of each")
    scaled = "mnistlab/scaled"
    front = [helper.make_node("Cast", [INPUT], ["mnistlab/float"], to=TensorProto.FLOAT),
             helper.make_node("Div", ["mnistlab/float", "mnistlab/255"], [scaled]),  # as flatten_scale
             helper.make_node("Reshape", [scaled, "mnistlab/rows"], [graph.input[0].name])]
    constants = [numpy_helper.from_array(np.array(255, np.float32), "mnistlab/255"),
                 numpy_helper.from_array(np.array([-1, IMAGE_SIDE * IMAGE_SIDE], np.int64), "mnistlab/rows")]
    pixels = helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["N", 1, IMAGE_SIDE, IMAGE_SIDE])
    combined = helper.make_graph(front + list(graph.node), "mnistlab", [pixels], list(graph.output),
                                 initializer=constants + list(graph.initializer), value_info=list(graph.value_info))
    opsets: dict[str, int] = {}  # each domain once (a converter may list one twice), at its highest version
    for opset in family_model.opset_import:
        opsets[opset.domain] = max(opset.version, opsets.get(opset.domain, 0))
    return helper.make_model(combined, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                             ir_version=family_model.ir_version, producer_name="mnistlab")


def _digest(model) -> str:
    """sha256 of the graph and of every metadata entry but the digest itself."""
    digest = hashlib.sha256(model.graph.SerializeToString(deterministic=True))
    for key, value in sorted((p.key, p.value) for p in model.metadata_props if p.key != DIGEST):
        digest.update(json.dumps([key, value]).encode())
    return digest.hexdigest()


def _seal(model, props: dict[str, str]) -> bytes:
    """``model`` with ``props`` (and their digest) as its metadata, serialized."""
    from onnx import helper

    del model.metadata_props[:]
    helper.set_model_props(model, props)
    helper.set_model_props(model, {**props, DIGEST: _digest(model)})
    return model.SerializeToString()


def export_onnx(model, classes: list[str], dataset: str, run: str, path: Path,
                check_images: np.ndarray | None = None, before_write: Callable[[], None] | None = None,
                follow_links: bool = True) -> Path:
    """Write ``model`` (a fitted mnistlab model) as an ONNX file at ``path``; returns the path (a link
    there is written through, unless ``follow_links`` is False: the run folder's own file).

    ``check_images`` (uint8 N×28×28, e.g. the run's test images): the file is written only if,
    under onnxruntime, it predicts the model's class (or one it ties with) for every one of them and probabilities
    within PARITY_TOLERANCE of the model's, summing to 1 (so too for ``probe_images``); else
    ExportError. A family that cannot describe itself as a graph raises ExportError naming
    itself. ``before_write`` is called last before the file is written (to raise if ``path``'s
    folder no longer holds that model).
    """
    require_onnx()
    run = printable(run)  # a folder's name need not be UTF-8, and protobuf's text must be
    graph = _with_pixel_input(model.onnx_graph())
    graph.doc_string = (f"mnistlab {model.family} model of run {run} ({dataset}): pixels uint8 N×1×28×28 "
                        f"(0–255, object bright on dark) → probabilities of {len(classes)} classes")
    props = {"mnistlab.format": FORMAT, "mnistlab.format_version": FORMAT_VERSION,
             "classes": json.dumps(list(classes)), "dataset": dataset,
             "photo_convention": json.dumps(photo_convention(dataset)), "input": INPUT_TEXT,
             "family": model.family, "run": run, "mnistlab_version": __version__,
             "check": "not checked"}
    if check_images is not None:
        props["check"] = _check(model, read_onnx(_seal(graph, props)), check_images)
    data = _seal(graph, props)
    if before_write is not None:
        before_write()
    try:
        atomic_write_bytes(Path(path), data, follow_links)
    except OSError as exc:
        raise ExportError(f"cannot write {path} ({exc.strerror or exc})") from None
    return Path(path)


def probe_images() -> np.ndarray:
    """uint8 images unlike a dataset's, on which an export's arithmetic can break where the test images
    pass: noise, a few bright pixels on black, a dark bar on white (a photo not inverted), flat grey."""
    noise = np.random.default_rng(0).integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    sparse = np.zeros((IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    sparse[[3, 10, 20], [5, 14, 22]] = 255
    inverted = np.full((IMAGE_SIDE, IMAGE_SIDE), 255, np.uint8)
    inverted[4:24, 12:16] = 0
    return np.stack([noise, sparse, inverted, np.full((IMAGE_SIDE, IMAGE_SIDE), 128, np.uint8)])


def _check(model, exported: OnnxModel, images: np.ndarray) -> str:
    """What the export gives ``images`` against what the model gives them (ExportError if they differ),
    and that its probabilities sum to 1 for them and for ``probe_images`` (ExportError if not): a float32
    GaussianNB graph gave rows summing to 2 on MNIST digits the test images it was checked on did not
    include, and on a few bright pixels on black."""
    expected = np.asarray(model.predict_proba(flatten_scale(images)), dtype=np.float64)
    got = exported.predict_proba(images).astype(np.float64)
    # another class only where the model's own probability of the graph's class is below its highest: a tie of
    # the model's (a forest of 20 trees: .35 and .35) that float32's rounding broke the other way was refused
    # ("another class for 22 of 10000 images, probabilities up to 1.2e-07 apart")
    chosen = expected[np.arange(len(images)), got.argmax(axis=1)]
    other_class = int(np.sum(chosen < expected.max(axis=1) - PARITY_TOLERANCE))
    difference = float(np.abs(got - expected).max()) if len(images) else 0.0
    if other_class or not difference <= PARITY_TOLERANCE:  # NaN (overflowing weights) is no agreement
        raise ExportError(f"the ONNX graph does not compute what the {model.family} model does: another class for "
                          f"{other_class} of {len(images)} images, probabilities up to {difference:.2g} apart "
                          f"(allowed: {PARITY_TOLERANCE:g}); nothing was written")
    probes = probe_images()
    off = np.abs(np.concatenate([got, exported.predict_proba(probes)]).sum(axis=1) - 1)
    if not off.max() <= PARITY_TOLERANCE:
        raise ExportError(f"the ONNX graph of the {model.family} model gives probabilities that do not sum to 1: "
                          f"{int(np.sum(~(off <= PARITY_TOLERANCE)))} of {len(off)} rows ({len(images)} test images, "
                          f"{len(probes)} probe images), up to {off.max():.2g} off (allowed: {PARITY_TOLERANCE:g}); "
                          "nothing was written")
    return (f"{len(images)} test images under onnxruntime: the model's class (or one it ties with within "
            f"{PARITY_TOLERANCE:g}) for every one, probabilities "
            f"at most {difference:.1e} from the model's; probabilities summing to 1 for them and "
            f"{len(probes)} probe images")


# --- reading ---------------------------------------------------------------------------

@dataclass
class OnnxModel:
    """An exported model, checked, ready to predict under onnxruntime."""

    session: object  # onnxruntime.InferenceSession
    classes: list[str]
    dataset: str
    metadata: dict[str, str]

    def predict_proba(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 images (N×28×28 or N×1×28×28, object bright on dark) → float32 N×classes."""
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        return self.session.run(None, {INPUT: pixels})[0]


def read_onnx(source: str | os.PathLike | bytes, threads: int | None = None) -> OnnxModel:
    """An ONNX file written by ``export_onnx`` (a path, or its bytes), checked; see the module docstring.

    ``threads``: onnxruntime's threads per prediction (None: its default, all cores).
    """
    require_onnx()
    import onnx
    import onnxruntime
    from google.protobuf.message import DecodeError

    name = "ONNX model" if isinstance(source, bytes) else str(source)
    data = source if isinstance(source, bytes) else read_regular_file(Path(source), MAX_MODEL_BYTES, ModelFileError)
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError) as exc:
        raise ModelFileError(f"{name}: not an ONNX file ({one_line(exc)})") from None
    _check_self_contained(model, name)
    try:
        onnx.checker.check_model(model, full_check=True)
    # ValueError: a tensor of a data type that does not exist; UnicodeDecodeError (a ValueError): text
    # that is not UTF-8; TypeError: the checker's bindings handed a value of the wrong kind
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{name}: not a valid ONNX model ({one_line(exc, 300)})") from None
    if not all(isinstance(p.key, str) and isinstance(p.value, str) for p in model.metadata_props):
        raise ModelFileError(f"{name}: its metadata is not text (a damaged file)")  # protobuf gives bytes then
    props = {p.key: p.value for p in model.metadata_props}
    if props.get("mnistlab.format") != FORMAT:
        raise ModelFileError(f"{name}: not an ONNX file exported by mnistlab (no mnistlab metadata)")
    if props.get("mnistlab.format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{name}: unsupported mnistlab ONNX format version "
                             f"{props.get('mnistlab.format_version')!r} (this mnistlab reads version {FORMAT_VERSION})")
    if props.get(DIGEST) != _digest(model):
        raise ModelFileError(f"{name}: the graph or its metadata changed after export (the digest does not match)")
    classes, dataset = _classes(props, name), props.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ModelFileError(f"{name}: the metadata names no dataset")
    _check_signature(model.graph, len(classes), name)
    options = onnxruntime.SessionOptions()
    # errors only: its warnings are coloured lines on stderr, around one-line errors ("Removing initializer
    # 'class_log_prior'. It is not used by any node" for every ComplementNB export)
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    try:
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no base class of their own
        raise ModelFileError(f"{name}: onnxruntime cannot run it ({one_line(exc, 300)})") from None
    return OnnxModel(session, classes, dataset, props)


def _check_self_contained(model, name: str) -> None:
    """Only ONNX's own operators, and every tensor inside the file: external data would make
    onnxruntime read other files, named by the file."""
    from onnx import TensorProto

    domains = {op.domain for op in model.opset_import}
    graphs, tensors = [model.graph], []
    while graphs:
        graph = graphs.pop()
        tensors += list(graph.initializer) + [s.values for s in graph.sparse_initializer]
        for node in graph.node:
            domains.add(node.domain)
            for attribute in node.attribute:
                tensors += [attribute.t, *attribute.tensors]
                graphs += [attribute.g, *attribute.graphs] if attribute.HasField("g") else list(attribute.graphs)
    foreign = sorted(domains - set(STANDARD_DOMAINS))
    if foreign:
        raise ModelFileError(f"{name}: uses operators outside ONNX's standard set ({', '.join(map(repr, foreign))})")
    if any(t.data_location == TensorProto.EXTERNAL or t.external_data for t in tensors):
        raise ModelFileError(f"{name}: refers to tensors in other files (external data); mnistlab writes one file")


def _classes(props: dict[str, str], name: str) -> list[str]:
    try:
        classes = parse_json(props.get("classes", ""))
    except ValueError:
        classes = None
    if not (isinstance(classes, list) and len(classes) >= 2 and all(isinstance(c, str) for c in classes)):
        raise ModelFileError(f"{name}: the metadata's 'classes' must be a JSON list of at least two class names")
    return classes


def _dims(value_info) -> list:
    """A tensor's dimensions: sizes, or names for the free ones."""
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def _check_signature(graph, n_classes: int, name: str) -> None:
    from onnx import TensorProto

    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if (len(inputs) != 1 or inputs[0].name != INPUT or inputs[0].type.tensor_type.elem_type != TensorProto.UINT8
            or _dims(inputs[0])[1:] != [1, IMAGE_SIDE, IMAGE_SIDE]):
        raise ModelFileError(f"{name}: its input is not {INPUT!r}, uint8 N×1×28×28")
    outputs = list(graph.output)
    if (len(outputs) != 1 or outputs[0].type.tensor_type.elem_type != TensorProto.FLOAT
            or _dims(outputs[0])[1:] != [n_classes]):
        raise ModelFileError(f"{name}: its output is not float32 probabilities of the {n_classes} classes it lists")


# --- a run's export, predicting like Predictor --------------------------------------------

class OnnxPredictor:
    """A run's ONNX export (``model.onnx`` in its folder), with ``Predictor``'s ``predict_photo``.

    Its predictions carry no explanation: the graph computes probabilities only.
    """

    def __init__(self, run_dir: Path, threads: int | None = None):
        self.run_dir = Path(run_dir)
        config = read_config(self.run_dir)
        self.name, self.dataset = self.run_dir.name, config["dataset"]["name"]
        self.created = config["created"]  # as Predictor's
        self.classes: list[str] = config["dataset"]["classes"]
        self.path = self.run_dir / ONNX_FILE
        self.model = read_onnx(self.path, threads)
        if self.model.classes != self.classes or self.model.dataset != self.dataset:
            raise ModelFileError(f"{self.path}: exported for {self.model.dataset!r} classes {self.model.classes}, "
                                 f"but the run has {self.dataset!r} classes {self.classes}; export it again")
        exported_from = (self.model.metadata.get("run"), self.model.metadata.get("family"))
        if exported_from != (printable(self.name), config["model"]):  # another run's file, copied in
            raise ModelFileError(f"{self.path}: exported from run {exported_from[0]!r} ({exported_from[1]}), not "
                                 f"from this run ({config['model']}); export it again")

    def predict_photo(self, source) -> Prediction:
        """A photo (path or bytes) → converted like the training data → its prediction."""
        prepared = prepare_photo(source, self.dataset)
        return prediction_of(self.model.predict_proba(prepared.pixels[None])[0], self.run_dir, self.classes,
                             prepared.pixels, _source_name(source), prepared)
