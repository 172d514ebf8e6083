"""``sal-lightning weights``: the weights files a configuration needs, fetched ahead of the run.

:func:`~sal_lightning.pipeline.weights.download_weights` on the command line::

    sal-lightning weights download --config examples/configs/pipeline_voc_resnet101.yaml
    sal-lightning weights download --config "[fit.yaml, pipeline.yaml]"

Each named or URL weights file lands in the torch hub cache (``$TORCH_HOME/hub/checkpoints``) that
the run reads; run it where there is network, with the ``TORCH_HOME`` the compute nodes use.
"""

from __future__ import annotations

from sal_lightning.cli.args import add_function, call, command_parser

HELP = "Initial weights: fetch every file a configuration names into the caches its run reads."


def main(argv: list[str]) -> int:
    """Run ``sal-lightning weights ACTION ...``; returns the exit code."""
    from sal_lightning.pipeline.weights import download_weights

    top = command_parser("sal-lightning weights", HELP, config=False)
    actions = top.add_subcommands(dest="action", required=True)
    download = command_parser(
        "sal-lightning weights download",
        "fetch the weights of pipeline or trainer configurations",
        config=False,
    )
    add_function(download, download_weights)
    actions.add_subcommand("download", download, help="fetch the weights a configuration names")
    namespace = top.parse_args(argv)
    served = call(download, download_weights, namespace["download"])
    print(f"weights ready: {len(served)} files")
    return 0
