"""``sal-lightning proxies``: step 1 (tags -> CAMs -> seeds -> ProxyNet -> proxy annotations).

:func:`~sal_lightning.stages.proxies.run_proxies` on the command line: its arguments, and the
fields of :class:`~sal_lightning.stages.proxy_settings.ProxySettings` as flags of their own::

    sal-lightning proxies --root VOC --workdir work/step1 --saliency VOC/saliency
    sal-lightning proxies --root VOC --workdir work/step1 --proxy_backbone vgg16_aspp   # SAL-Net-VGG16
    sal-lightning proxies --config examples/configs/proxies_synthetic_cpu.yaml --root VOC --workdir W
    sal-lightning proxies ... --steps "[cams, seeds, predict]" --resume true
"""

from __future__ import annotations

import json

from sal_lightning.cli.args import add_function, call, command_parser

HELP = "Step 1: proxy annotations from tags (CAM classifier, seeds, ProxyNet with SEC/DSRG losses)."


def main(argv: list[str]) -> int:
    """Run step 1 and print the seed / proxy quality; returns the exit code."""
    from sal_lightning._atomic import check_writable
    from sal_lightning.stages.proxies import run_proxies

    parser = command_parser("sal-lightning proxies", HELP)
    add_function(parser, run_proxies, flatten=("settings",))
    args = parser.parse_args(argv)
    check_writable(args["workdir"], "--workdir")  # settings were checked when parsed; now the output
    report = call(parser, run_proxies, args, flatten=("settings",))
    for name in ("seeds", "proxies", "p1"):
        if name in report:
            summary = {k: v for k, v in report[name].items() if k != "class_iou"}
            print(f"{name}: {json.dumps(summary)}")
    print(f"report: {args['workdir']}/proxies.json")
    return 0
