"""The work of each SAL-Net step as plain, typed functions over folders of files.

Each module holds one stage: its settings (a dataclass: the keys of its pipeline section and the
flags of its command) and its function. Every stage that visits a dataset runs a Lightning loop
from :func:`~sal_lightning.stages.trainer.make_trainer`, so ``TrainerSettings(devices=N)`` shards
it with DDP.

==================  ==========================================================================
module              stage
==================  ==========================================================================
``proxies``         step 1: CAMs, seeds, ProxyNet, proxy annotations (``proxy_config``: settings)
``references``      reference masks from saliency
``coarse``          AC, CD, SC (Eq. 3-5)
``trainset``        the regression scorer's training set, synthesised from the proxies
``scorer``          the fine scorer's training (MaskScorer regression, or AgreementNet)
``fine``            P and SF (Eq. 6-7)
``select``          the selection (Eq. 9): tau or keep, hard or soft; the oracle
``folder``          a folder of pseudo-labels scored end to end
``retrain``         step 4: SALSegmenter on the selected proxies (P2..P5)
``evaluate``        predictions and mIoU with the full inference
``quality``         labels against the ground truth
``sweep``           tau sweeps and correlations (Table IV, Fig. 9)
``report``          the pipeline's report
``corrupt``         proxies of known quality, from the ground truth
``trainer``         the Trainer factory, the checkpoint save, the seed
``checks``          the eager checks every stage shares
==================  ==========================================================================
"""
