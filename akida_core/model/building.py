"""How a layer joins a Model: generation check, inbound resolution and attachment (shapes, bits).

`GraphBuilding` is a base of `Model` (graph.py); it reads and writes the model's `_layers` only.
"""
from ..enums import IpVersion
from ..errors import AkidaError, ModelStructureError
from ..layers import InputData, Layer


class GraphBuilding:
    """The attachment rules of `Model.add`: one generation per model, inbounds that are earlier
    layers (Akida 1.0: the previous one), the first layer an input layer, and each layer's input
    shape and bits taken from its inbounds."""

    def _check_generation(self, layer, name):
        current = self._generation()
        if layer.ip_version is not None and current is not None and layer.ip_version is not current:
            def label(version):
                return "Akida 1.0 (IpVersion.v1)" if version is IpVersion.v1 else "Akida 2.0 (IpVersion.v2)"
            raise ModelStructureError(
                f"{layer.layer_type.name} '{name}' is an {label(layer.ip_version)} layer but the model holds "
                f"{label(current)} layers; a model is all Akida 1.0 or all Akida 2.0 (InputData fits both)")

    def _generation(self):
        """IpVersion of the model's layers, or None while it holds only InputData (or nothing)."""
        for layer in self._layers:
            if layer.ip_version is not None:
                return layer.ip_version
        return None

    def _resolve_inbounds(self, layer, name, inbound_layers):
        if inbound_layers is not None and not isinstance(inbound_layers, (list, tuple)):
            inbound_layers = [inbound_layers]
        if self.reads_quantizer(layer) and (not inbound_layers or (
                len(inbound_layers) == 1 and inbound_layers[0] is self._layers[0])):
            return [self._layers[0]]
        if layer.is_input or not self._layers:
            if inbound_layers:
                raise ModelStructureError(f"{layer.layer_type.name} '{name}' is an input layer: it takes no "
                                          "inbound layers")
            return []
        if not inbound_layers:
            return [self._layers[-1]]
        inbounds = list(inbound_layers)
        for inbound in inbounds:
            if not isinstance(inbound, Layer) or not any(inbound is lay for lay in self._layers):
                label = inbound.name if isinstance(inbound, Layer) else repr(inbound)
                raise ModelStructureError(
                    f"{layer.layer_type.name} '{name}': inbound {label} is not a layer of this model; inbounds "
                    f"must be earlier layers (model layers: {[lay.name for lay in self._layers]})")
        if layer.ip_version is not IpVersion.v2 and (len(inbounds) != 1 or inbounds[0] is not self._layers[-1]):
            raise ModelStructureError("only sequential models are supported on Akida 1.0: the inbound layer must "
                                      f"be the last layer of the model ('{self._layers[-1].name}')")
        return inbounds

    def _attach(self, layer, name, index):
        if index == 0:
            if not layer.is_input:
                raise ModelStructureError(
                    f"the first layer must be an input layer (InputData or InputConvolutional; Akida 2.0: "
                    f"InputData, InputConv2D or Quantizer); got {layer.layer_type.name} '{name}'")
            bits = 8 if layer.layer_type.name in ("InputConvolutional", "InputConv2D", "Quantizer") \
                else layer.params.input_bits
            signed = bits > 4 and isinstance(layer, InputData)
            try:
                layer._attach(self, name, layer.params.input_shape, bits, signed)
            except AkidaError:
                layer._detach()
                raise
            return
        if layer.is_input and layer._inbound_layers:
            self._attach_after_quantizer(layer, name)
            return
        if layer.is_input:
            raise ModelStructureError(
                f"{layer.layer_type.name} '{name}' is an input layer: it can only be the first layer")
        if layer.ip_version is IpVersion.v2:
            self._attach_v2(layer, name, index)
            return
        previous = self._layers[index - 1]
        if previous.output_signed:
            why = ("has no activation (its outputs are raw potentials)" if not previous.is_input
                   else f"has signed {previous.output_bits}-bit inputs")
            raise ModelStructureError(
                f"{layer.layer_type.name} '{name}' cannot follow '{previous.name}', which {why}; Akida layers "
                "take unsigned inputs of at most 4 bits: enable the activation of the previous layer")
        if previous.output_bits > 4 and not previous.is_input:
            raise ModelStructureError(f"'{previous.name}' outputs {previous.output_bits} bits; at most 4 allowed")
        used = sum(lay.variable_bytes for lay in self._layers[:index])
        try:
            layer._attach(self, name, previous.output_dims, previous.output_bits, False, used)
        except AkidaError:
            layer._detach()
            raise

    def reads_quantizer(self, layer):
        """Whether `layer` is an InputConv2D added right after a lone Quantizer: it then reads the
        Quantizer's uint8 codes (a float input quantized with a zero point, as MetaTF converts it)."""
        return layer.layer_type.name == "InputConv2D" and len(self._layers) == 1 and \
            self._layers[0].layer_type.name == "Quantizer"

    def _attach_after_quantizer(self, layer, name):
        quantizer = layer._inbound_layers[0]
        if quantizer.output_signed or quantizer.output_bits != 8:
            kind = "signed" if quantizer.output_signed else "unsigned"
            raise ModelStructureError(
                f"InputConv2D '{name}' reads uint8 images, but Quantizer '{quantizer.name}' outputs {kind} "
                f"{quantizer.output_bits}-bit values; allowed: output_bits=8, output_signed=False. Hint: "
                "use an InputData layer (or a Conv2D) after a signed or 4-bit Quantizer")
        if tuple(layer.params.input_shape) != tuple(quantizer.output_dims):
            raise ModelStructureError(
                f"InputConv2D '{name}': input_shape {tuple(layer.params.input_shape)} differs from the "
                f"output {tuple(quantizer.output_dims)} of Quantizer '{quantizer.name}' it reads")
        try:
            layer._attach(self, name, quantizer.output_dims, 8, False)
        except AkidaError:
            layer._detach()
            raise

    def _attach_v2(self, layer, name, index):
        for inbound in layer._inbound_layers:
            if inbound.layer_type.name == "Dequantizer":
                raise ModelStructureError(f"{layer.layer_type.name} '{name}' cannot follow Dequantizer "
                                          f"'{inbound.name}': a Dequantizer must be the last layer")
        used = sum(lay.variable_bytes for lay in self._layers[:index])
        try:
            layer._attach_inbounds(self, name, list(layer._inbound_layers), used)
        except AkidaError:
            layer._detach()
            raise
