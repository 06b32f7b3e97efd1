"""`akida-core map`: map a .fbz model on a virtual device and print sequences, NPs, program size.

Registered by `akida_core.cli.build_parser` (its `add_map_command` hook). Exit codes: 0 mapped;
1 `--hw-only` and the model does not fit in one hardware sequence (the reason is printed); 2 usage
error; 3 unreadable or invalid model file, or an output that cannot be written; 4 internal error.
"""
import json
import sys

EXIT_OK, EXIT_DOES_NOT_FIT = 0, 1
DEVICES = ("AKD1000", "AKD1500", "TwoNodesIPv1", "TwoNodesIPv2", "FourNodesIPv2", "SixNodesIPv2",
           "TwelveNodesIPv2", "PicoIP")


def _device(name):
    from ..mapping import devices as devices_module  # `devices` alone is also the devices() function
    from ..mapping.devices_v2 import V2_DEVICES
    if name in V2_DEVICES:
        return V2_DEVICES[name]()
    return getattr(devices_module, name)()


def mapping_report(model):
    """Plain data of a mapped model: device, sequences (backend, layers, NPs, program bytes)."""
    from ..mapping.devices import NPType
    sequences = []
    for sequence in model.sequences:
        nps = {name: len([m for m in maps if m.type is not NPType.HRC])
               for name, maps in sequence.nps.items()}
        sequences.append({"name": sequence.name, "backend": sequence.backend.name,
                          "layers": [layer.name for layer in sequence.layers],
                          "nps": sum(nps.values()), "nps_per_layer": nps,
                          "program_bytes": sequence.program_size})
    return {"device": model.device.desc if model.device is not None else None,
            "sequences": sequences, "nps": sum(s["nps"] for s in sequences),
            "program_bytes": sum(s["program_bytes"] for s in sequences)}


def _cmd_map(args):
    from ..errors import MappingError
    from ..mapping.mapper import MapMode
    from ..model import Model
    model = Model(args.model)
    try:
        model.map(_device(args.device), hw_only=args.hw_only, mode=MapMode[args.mode])
    except MappingError as err:
        from ..mapping.v2.mapper import IpVersionMismatch
        if not args.hw_only or isinstance(err, IpVersionMismatch):
            raise   # a usage error (exit 2), not a "does not fit" verdict
        print(f"akida-core: {args.model} does not fit {args.device} with --hw-only: {err}",
              file=sys.stderr)
        return EXIT_DOES_NOT_FIT
    from ..mapping.v2.state import _state, mapping_report as mapping_report_v2, report_lines
    v2 = _state(model) is not None   # Akida 2.0: passes and skip DMAs, no program bytes
    report = mapping_report_v2(model) if v2 else mapping_report(model)
    if args.output:
        model.save(args.output)
        report["saved"] = args.output
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return EXIT_OK
    if v2:
        print("\n".join(report_lines(report)))
        if args.output:
            print(f"Mapped model saved as {args.output}.")
        return EXIT_OK
    for sequence in report["sequences"]:
        size = f", program {sequence['program_bytes']:,} bytes" if sequence["backend"] == \
            "Hardware" else ""
        print(f"{sequence['name']} ({sequence['backend']}): {len(sequence['layers'])} layer(s), "
              f"{sequence['nps']} NPs{size}")
    hardware = sum(s["backend"] == "Hardware" for s in report["sequences"])
    print(f"{args.device} ({report['device']}), mode {args.mode}: {len(report['sequences'])} "
          f"sequence(s), {hardware} in hardware, {report['nps']} NPs, program "
          f"{report['program_bytes']:,} bytes")
    if args.output:
        print(f"Mapped model saved as {args.output}.")
    return EXIT_OK


def add_map_command(sub):
    """Adds the `map` sub-command to the `akida-core` parser's sub-parsers."""
    from ..mapping.mapper import MapMode
    parser = sub.add_parser("map", help="map a .fbz model on a virtual device (sequences, NPs, "
                            "program size)")
    parser.add_argument("-m", "--model", required=True, help="path to a .fbz file")
    parser.add_argument("--device", default="AKD1000", choices=DEVICES,
                        help="virtual device (default AKD1000; Akida 2.0 models: an IPv2 device)")
    parser.add_argument("--hw-only", action="store_true",
                        help="require one hardware sequence (exit 1 with the reason otherwise)")
    parser.add_argument("--mode", default="AllNps", choices=[mode.name for mode in MapMode],
                        help="AllNps (default: most NPs), Minimal (fewest NPs) or HwPr")
    parser.add_argument("-o", "--output", help="save the mapped model to this .fbz")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=_cmd_map)
