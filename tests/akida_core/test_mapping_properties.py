"""Hypothesis: on random small models and devices, every mapping keeps its invariants and the results."""
import numpy as np
from hypothesis import given, settings, strategies as st

import akida_core as ak
from akida_core.devices import NPType
from akida_core.mapping_rules import SequenceFit, allocate, has_max_pool, layer_issue, layer_need, np_kind
from akida_core.program import decode_program

from .helpers import randomize

DEVICES = [ak.AKD1000, ak.AKD1500, ak.TwoNodesIPv1,
           lambda: ak.create_device(3, 2, hw_version=ak.NSoC_v2),
           lambda: ak.create_device(2, 0, include_hrc=False, hw_version=ak.NSoC_v2)]


@st.composite
def models(draw):
    model = ak.Model()
    if draw(st.booleans()):
        shape = (draw(st.integers(3, 9)), draw(st.integers(3, 9)), draw(st.sampled_from([1, 3])))
        model.add(ak.InputConvolutional(shape, (3, 3), draw(st.integers(1, 6)), weights_bits=draw(st.sampled_from([4, 8])),
                                        act_bits=draw(st.sampled_from([1, 2, 4])), name="first"))
    else:
        model.add(ak.InputData((draw(st.integers(2, 8)), draw(st.integers(2, 8)), draw(st.integers(1, 4))),
                               input_bits=draw(st.sampled_from([1, 2, 4])), name="first"))
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["conv", "sep", "fc"]))
        bits, act = draw(st.sampled_from([1, 2, 4, 8])), draw(st.sampled_from([1, 2, 4]))
        if kind == "fc":
            model.add(ak.FullyConnected(draw(st.integers(1, 40)), weights_bits=bits, act_bits=act, name=f"l{i}"))
            continue
        kernel = draw(st.sampled_from([1, 3, 5, 9])) if kind == "conv" else draw(st.sampled_from([3, 5]))
        pool = draw(st.sampled_from([ak.PoolType.NoPooling, ak.PoolType.Max, ak.PoolType.Average]))
        layer_type = ak.Convolutional if kind == "conv" else ak.SeparableConvolutional
        try:
            model.add(layer_type((kernel, kernel), draw(st.integers(1, 80)), weights_bits=bits if kind == "conv" else
                                 draw(st.sampled_from([2, 4])), act_bits=act, pool_type=pool,
                                 pool_size=(2, 2) if pool == ak.PoolType.Max else (-1, -1), name=f"l{i}"))
        except ak.ModelStructureError:
            break   # input too small for this kernel/pooling: keep the model built so far
    return randomize(model, seed=draw(st.integers(0, 3)), threshold_range=(0, 50), act_step_range=(1.0, 8.0))


@settings(max_examples=40)
@given(models(), st.sampled_from(range(len(DEVICES))), st.sampled_from(list(ak.MapMode)))
def test_mapping_invariants(model, device_index, mode):
    device = DEVICES[device_index]()
    x = np.random.default_rng(0).integers(0, 2 ** model.layers[0].input_bits,
                                          (2, *model.input_shape)).astype(np.uint8)
    expected = model.forward(x)
    model.map(device, mode=mode)
    sequences = model.sequences
    assert [lay.name for s in sequences for lay in s.layers] == [lay.name for lay in model.layers]
    for sequence in sequences:
        if sequence.backend is ak.BackendType.Software:
            assert sequence.program is None and not any(sequence.nps.values())
            continue
        assert sequence.name == f"HW/{sequence.layers[0].name}-{sequence.layers[-1].name}"
        assert not has_max_pool(sequence.layers[-1], device.table)
        kinds = [np_kind(lay) for lay in sequence.layers]
        assert ("FNP", "CNP") not in set(zip(kinds, kinds[1:]))
        idents = [m.ident for nps in sequence.nps.values() for m in nps]
        assert len(idents) == len(set(idents))                      # an NP serves one layer
        by_ident = {np_.ident: np_ for np_ in device.mesh.nps}
        for layer in sequence.layers:
            nps = sequence.nps[layer.name]
            if np_kind(layer) == "":
                assert nps == ()
                continue
            filters = layer.params.units if np_kind(layer) == "FNP" else layer.params.filters
            assert [(m.start, m.stop) for m in nps] == list(zip([0] + [m.stop for m in nps[:-1]],
                                                                [m.stop for m in nps]))
            assert nps[-1].stop == filters and all(m.stop > m.start for m in nps)
            for m in nps:
                np_ = device.mesh.hrc if m.type is NPType.HRC else by_ident[m.ident]
                assert np_.can(m.type)
        assert len(decode_program(sequence.program)["layers"]) == len(sequence.layers)
    np.testing.assert_array_equal(model.forward(x), expected)


@settings(max_examples=40)
@given(models(), models(), st.sampled_from(range(len(DEVICES))))
def test_sequence_fit_agrees_with_allocate(first, second, device_index):
    """The mapper grows sequences with SequenceFit; its verdict must be allocate's, for every prefix."""
    device = DEVICES[device_index]()
    needs = []
    for layer in first.layers + second.layers[1:]:
        if layer_issue(layer, device.table) is None:
            need, issue = layer_need(layer, device.table, False)
            if issue is None:
                needs.append((f"{layer.name}_{len(needs)}", need))
    fit = SequenceFit(device.mesh)
    for end in range(1, len(needs) + 1):
        fit = fit and fit.extended(needs[end - 1][1])
        allocation, issue = allocate(needs[:end], device.mesh, all_nps=False)
        assert (fit is None) == (issue is not None), (end, issue)
