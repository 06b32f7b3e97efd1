"""A Model as a description (the dict that .fbz files and JSON hold), and its validated reading.

`describe(model)` writes it; `restore_checked(model, read, origin)` fills an empty Model from one,
checking every field where it is read and turning anything else that goes wrong into
ModelFormatError naming the origin. Version 1 descriptions (sequential Akida 1.0) still load.
"""
import json

from ..enums import IpVersion
from ..errors import AkidaError, ModelFormatError
from .state import layer_from_dict, state_hooks

MODEL_DICT_VERSION = 2
"""1: sequential Akida 1.0 models; 2: adds per-layer 'inbounds' and the model's 'ip_version'."""
MAX_LAYERS = 1024
"""Most layers a model may hold (AKD1000 has 78 NPs); also bounds the cost of loading a file."""


def describe(model):
    """The model as a dict of plain values and numpy arrays (layers, inbounds for Akida 2.0, state)."""
    v2 = model.ip_version is IpVersion.v2
    layers = []
    for layer in model.layers:
        entry = layer.to_dict()
        if v2:
            entry["inbounds"] = [inbound.name for inbound in layer.inbounds]
        layers.append(entry)
    out = {"format": "akida_core.Model", "version": MODEL_DICT_VERSION, "ip_version": model.ip_version.name,
           "layers": layers}
    for name, (save, _) in state_hooks().items():
        state = save(model)
        if state is not None:
            out[name] = state
    return out


def restore_checked(model, read, origin):
    """Fill the empty `model` from the description `read()` returns.

    Raises:
        ModelFormatError: anything malformed (also what a field check missed), naming `origin`.
    """
    description = read()
    try:
        restore(model, description)
    except ModelFormatError:
        raise
    except (AkidaError, LookupError, TypeError, ValueError, AttributeError, ArithmeticError,
            RecursionError) as err:
        # A well-formed container with an invalid model inside is still a bad file; the fields are
        # validated where they are read, this is the net for what a check missed.
        raise ModelFormatError(f"{origin}: invalid model description: {err}") from err


def restore(model, description):
    """Add the described layers, variables and registered state to the empty `model`."""
    if not isinstance(description, dict) or not isinstance(description.get("format"), str) \
            or description["format"] != "akida_core.Model":
        raise ModelFormatError("not an akida_core model description (missing format 'akida_core.Model')")
    version = description.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MODEL_DICT_VERSION:
        raise ModelFormatError(f"model description version {version!r} is not supported "
                               f"(this build reads 1 to {MODEL_DICT_VERSION})")
    layers = description.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelFormatError("model description has no 'layers' list")
    if len(layers) > MAX_LAYERS:
        raise ModelFormatError(f"model description has {len(layers):,} layers; a model holds at most "
                               f"{MAX_LAYERS} (MAX_LAYERS)")
    for entry in layers:
        add_from_dict(model, entry)
    declared = description.get("ip_version", "v1")
    if declared not in ("v1", "v2") or declared != model.ip_version.name:
        raise ModelFormatError(f"model description declares ip_version {declared!r} but its layers are "
                               f"{model.ip_version.name}")
    for name, (_, load) in state_hooks().items():
        if name in description:
            load(model, description[name])


def add_from_dict(model, entry):
    """Build one layer from its entry, add it with its inbounds, and set its variables."""
    layer = layer_from_dict(entry)
    model.add(layer, _inbounds_by_name(model, layer, entry.get("inbounds")))
    variables = entry.get("variables")
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise ModelFormatError(f"layer '{layer.name}': 'variables' must be a dict of arrays, got "
                               f"{type(variables).__name__}")
    for name, value in variables.items():
        if name not in layer.variable_specs():
            raise ModelFormatError(f"layer '{layer.name}' has no variable {name!r}")
        layer.set_variable(name, value)


def _inbounds_by_name(model, layer, names):
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names) or len(names) > 2:
        raise ModelFormatError(f"layer '{layer.name}': 'inbounds' must be a list of at most 2 layer names, "
                               f"got {str(names)[:100]}")
    if model.reads_quantizer(layer) and names == [model.layers[0].name]:
        return [model.layers[0]]
    if layer.is_input:
        if names:
            raise ModelFormatError(f"layer '{layer.name}' is an input layer but lists inbounds {names}")
        return None
    known = {lay.name: lay for lay in model.layers}
    missing = [name for name in names if name not in known]
    if missing:
        raise ModelFormatError(f"layer '{layer.name}': inbounds {missing} are not earlier layers of the model")
    return [known[name] for name in names]


def parse_json(text):
    """Parse model JSON, refusing NaN/Infinity and too deep nesting with ModelFormatError."""
    def reject_constant(name):
        raise ModelFormatError(f"the JSON constant {name} is not allowed; only finite numbers")
    try:
        return json.loads(text, parse_constant=reject_constant)
    except RecursionError as err:
        raise ModelFormatError("invalid model JSON: nested too deeply to parse") from err
    except (ValueError, TypeError) as err:
        raise ModelFormatError(f"invalid model JSON: {err}") from err
