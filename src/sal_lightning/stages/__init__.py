"""The SAL-Net stages: one module per stage, holding its settings, its work and its pipeline step.

A stage module (``coarse``: :class:`~sal_lightning.stages.coarse.CoarseSettings`,
:func:`~sal_lightning.stages.coarse.score_coarse`, :class:`~sal_lightning.stages.coarse.CoarseScores`)
has a settings dataclass (the keys of its pipeline section and the flags of its command), a plain,
typed function over folders of files (its first two parameters positional, the rest by keyword) and
the :class:`~sal_lightning.stages.step.Step` that runs it in a pipeline. Every stage that visits a
dataset runs a Lightning loop from :func:`~sal_lightning.stages.trainer.make_trainer`, so
``TrainerSettings(devices=N)`` shards it with DDP.

==================  ==========================================================================
module              stage
==================  ==========================================================================
``proxies``         step 1: CAMs, seeds, ProxyNet, proxy annotations, or a folder imported
                    (``proxy_settings``: its settings; ``step1``: its sub-steps)
``references``      reference masks from saliency
``coarse``          AC, CD, SC (Eq. 3-5)
``trainset``        the regression scorer's training set, synthesised from the proxies
``scorer``          the fine scorer's registry and training (MaskScorer regression, AgreementNet)
                    (``scorer_training``: how the built-in scorers train)
``fine``            P and SF (Eq. 6-7)
``select``          the selection (Eq. 9): tau or keep, hard or soft; the oracle
``folder``          a folder of pseudo-labels scored end to end
``retrain``         step 4: SALSegmenter on the selected proxies (P2..P5)
``evaluate``        predictions and mIoU with the full inference
``report``          the pipeline's report
``quality``         labels against the ground truth
``sweep``           tau sweeps and correlations (Table IV, Fig. 9)
``corrupt``         proxies of known quality, from the ground truth
``step``            the step base class, its context, the workdir's artefacts by name
``trainer``         the Trainer factory, the checkpoint save, the seed
``checks``          the eager checks every stage shares
==================  ==========================================================================
"""
