"""The rows of the fidelity table (``docs/fidelity.md``): every setting with the paper's, the released
code's and this library's choice, and why. Values in braces come from :data:`~sal_lightning.paper.PAPER`
and :data:`~sal_lightning.paper.RELEASED` when the table is rendered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One setting of the fidelity table. ``paper`` may name values as ``{vgg16[lr]}``,
    ``{resnet101[tau]}`` or ``{released[test_scales]}`` (formatted from :data:`PAPER` /
    :data:`RELEASED`)."""

    setting: str
    paper: str
    released: str
    default: str
    option: str
    why: str


ROWS: tuple[Row, ...] = (
    Row(
        "CAM network (step 1)",
        "VGG16 conv layers (the {vgg16[cam_backbone]} trunk), conv6/conv7 "
        "({vgg16[cam_conv7_channels]} ch), GAP on conv7, fc classifier (Sec. III-A; one CAM "
        "network for both backbones)",
        "not released (step 4 only)",
        "the same: the trunk at stride 8, conv6 3x3 / conv7 1x1, GAP, 1x1 classifier (= fc after "
        "GAP); the defaults of `ProxySettings` (presets `paper-vgg16`, `paper-resnet101`)",
        option="`cam_backbone` (any network name, e.g. `deeplabv3_resnet50` at stride 16), "
        "`cam_conv7_channels: null`",
        why="paper; its Sec. III-A names VGG16 for the CAMs, and DSRG [12], whose numbers are P1, seeds "
        "its ResNet-101 from the same VGG16 CAMs",
    ),
    Row(
        "ProxyNet (step 1, P1)",
        "DSRG [12] on DeepLab-ASPP: {vgg16[proxy_backbone]} / {resnet101[proxy_backbone]} "
        "(P1 56.9 / 61.4, Table VI)",
        "not released",
        "the same (`proxy_backbone`); SEC / DSRG losses and growth, DSRG's settings",
        option="`proxy_backbone`; `--proxies FOLDER` imports any method's pseudo-labels",
        why="paper",
    ),
    Row(
        "Background seeds (step 1)",
        "DSRG's [12] (step 1 is DSRG, whose numbers are P1): saliency maps, background where the "
        "normalised saliency < 0.06 (`background`: {vgg16[background]})",
        "not released",
        "`background: saliency`: `--saliency FOLDER` is required; without it the run stops before "
        "any step, naming `--saliency`",
        option="`background: cam`: the lowest `bg_quantile` (30%) of the CAMs, announced by a warning line",
        why="paper; without saliency the proxies of the synthetic data lose 8.8 mIoU points (85.8 -> "
        "77.0, docs/proxies.md)",
    ),
    Row(
        "Proxies restricted to the tags (step 1)",
        'no (`predict_with_tags`: {vgg16[predict_with_tags]}): the training images are "segmented '
        'via the initial segmentation model" (Sec. III-A); CD (Eq. 4) scores the pixels of '
        "untagged classes, and Figs. 4 and 6 show CD < 1",
        "not released",
        "off: the ProxyNet's multi-scale + flip + CRF prediction as it is",
        option="`predict_with_tags: true` (then every CD is 1: SC = AC and SF = P)",
        why="paper; DSRG's inference uses no tags either. Restricted proxies are cleaner, but the "
        "coarse score can no longer see a wrong class",
    ),
    Row(
        "Retraining network (step 4)",
        "DeepLab-ASPP [47]: {vgg16[backbone]} / {resnet101[backbone]} (DeepLab v2: dilated "
        "conv4/conv5, four 3x3 classifiers at rates 6/12/18/24 summed)",
        "VGG16 DeepLab-ASPP (fc6 3x3 1024, fc7 1x1 1024, fc8 per rate, summed)",
        "the same in the paper configs; `SALSegmenter` default `deeplabv2_resnet101` (torchvision trunk)",
        option="`vgg16_largefov`, `deeplabv2_<smp encoder>`, `deeplabv3_<smp encoder>` (smp DeepLabV3: "
        "rates 12/24/36, image pooling, batch norm in the head)",
        why="paper; smp's DeepLabV3 is another network, kept as an option",
    ),
    Row(
        "Output stride",
        "{vgg16[output_stride]} (DeepLab-ASPP)",
        "8",
        "8",
        option="16 for smp encoders",
        why="paper",
    ),
    Row(
        "ResNet-101 trunk",
        "DeepLab v2's (Caffe ResNet-101: stride in the first 1x1 of a block)",
        "-",
        "`deeplabv2_caffe_resnet101` in the paper configs: the MSRA / Caffe trunk (7x7 stem, ceil-mode "
        "pool, stride in the first 1x1), in the layout of the converted DeepLab weights",
        option="`deeplabv2_resnet101`: torchvision / smp ResNet-101 (stride in the 3x3)",
        why="the paper's network, and the one whose converted weights the WSSS field starts from",
    ),
    Row(
        "Initial weights (ResNet-101)",
        "not stated",
        "-",
        "VOC configs: `encoder_weights: coco`, the DeepLab authors' COCO initialisation "
        "(`deeplabv1_resnet101-coco.pth`, a local file: docs/backbones.md); COCO configs: "
        "`deeplabv2_resnet101` with smp's ImageNet weights",
        option="`encoder_weights`: `coco`, `imagenet` (torchvision trunk), a URL or a file path",
        why="the field's start since DeepLab v2; it has seen COCO's pixel labels, so not on COCO data",
    ),
    Row(
        "Backbone batch norm (ResNet-101)",
        "not stated; DeepLab v2 freezes it",
        "not updated (`is_training: False`)",
        "frozen when weights are loaded: eval mode and no gradient, also in `train()`; trained "
        "without weights",
        option="`backbone_kwargs: {{freeze_bn: ...}}`",
        why="DeepLab v2's convention: batch 7 is too small to estimate batch statistics; without weights "
        "there are none to keep (frozen, a random ResNet-101's loss is ~5e4, then NaN)",
    ),
    Row(
        "Classification branch (Eq. 10)",
        "3x3 convs at rates {vgg16[branch_rates]}, each GAP-ed to d_k, "
        "d_s = d_1 + d_2 + d_3 + d_4 (branch_combine {vgg16[branch_combine]}, Table V)",
        "per rate 3x3 conv 256 + ReLU + dropout 0.5 + 3x3 conv to 20; b1 + (b2+b3+b4)/3; GAP; fc 20->20",
        "the paper's",
        option="`branch_combine: released`, `branch_rates`, `branch_hidden_channels`",
        why="paper",
    ),
    Row(
        "Eq. 11 in training",
        "Z-hat = Z (x) d_s, the selection loss on Z-hat (`attention_refine`: {vgg16[attention_refine]})",
        "not applied: the branch acts through the shared backbone only",
        "applied, as softmax(z + log[1, sigmoid(d_s)])",
        option="`attention_refine: false` (the release)",
        why="paper; the background channel's weight 1 and the sigmoid are this library's reading "
        "(docs/equations.md)",
    ),
    Row(
        "Eq. 11 at inference",
        "not stated",
        "not applied",
        "not applied (`refine_at_inference: false`)",
        option="`refine_at_inference: true` (for single-scale figures)",
        why="measured, paired over three seeds on voclike-s11: multi-scale + CRF -2.95 +- 4.66 (within "
        "the spread), single scale +6.78 +- 2.40 (docs/segmenter.md)",
    ),
    Row(
        "Retraining loss without selection (P2)",
        "Eq. 2: cross-entropy over all proxies",
        "softmax probabilities fed to the cross-entropy as logits (not copied)",
        "Eq. 13 with every w_i = 1, normalised by the labelled pixels",
        option="-",
        why="Eq. 2 is Eq. 13 with unit weights",
    ),
    Row(
        "Selection loss (Eq. 9, 13)",
        "hard weights w_i = [SF_i >= tau], summed cross-entropy",
        "the selected images given as a list",
        "hard weights; mean cross-entropy over the selected images' pixels; only selected images drawn",
        option="`select: {{mode: soft}}`",
        why="the normalisation keeps the gradient scale when fewer images are selected (docs/design.md)",
    ),
    Row(
        "Attention loss (Eq. 12)",
        "-sum_c Y_c log d_s^c over the tagged classes",
        "mean sigmoid cross-entropy over the 20 classes",
        "multi-label soft margin over all classes (as the release)",
        option="-",
        why="Eq. 12 as printed is minimised by calling every class present",
    ),
    Row(
        "lambda (Eq. 14)",
        "{vgg16[lambda_atten]} (Table VIII)",
        "2",
        "2",
        option="`lambda_atten`",
        why="paper",
    ),
    Row(
        "Optimiser",
        "SGD, momentum {vgg16[momentum]}, weight decay {vgg16[weight_decay]}",
        "momentum 0.9, weight decay 5e-4 on weights only",
        "the same, no decay on biases or batch norm",
        option="`momentum`, `weight_decay`",
        why="paper; the bias rule is the release's and DeepLab's",
    ),
    Row(
        "Base learning rate",
        "{vgg16[lr]} (VGG16) / {resnet101[lr]} (ResNet-101)",
        "1e-3 (VGG16); a comment suggests 6-7e-5 for ResNet",
        "the paper's in the configs (`SALSegmenter` default 1e-3)",
        option="`lr`",
        why="paper",
    ),
    Row(
        "Learning-rate multipliers",
        "not stated",
        "new layers: weights {released[head_lr_mult]}x, biases {released[head_bias_lr_mult]}x",
        "the release's (classification branch and segmentation head are new layers)",
        option="`head_lr_mult`, `head_bias_lr_mult`, `bias_lr_mult`",
        why="the paper gives only the base rate; DeepLab and the release use these",
    ),
    Row(
        "Schedule",
        "poly, power {vgg16[poly_power]}, every iteration",
        "poly 0.9",
        "the same",
        option="`poly_power`",
        why="paper",
    ),
    Row(
        "Iterations",
        "{vgg16[max_steps]} (VGG16) / {resnet101[max_steps]} (ResNet-101), the same for P2..P5",
        "27k (VGG16)",
        "the paper's in the configs; one `max_steps` for every variant",
        option="`retrain: {{max_steps}}`",
        why="paper: selecting fewer images means more passes, not fewer updates",
    ),
    Row(
        "Batch on N devices",
        "one GPU (a GTX 1080Ti, Table XI): batch {vgg16[batch_size]} is the global batch",
        "one GPU",
        "the paper configurations read their training batch sizes as global batches "
        "(`trainer: {{batch_sizes: global}}`): each of N devices takes batch / (N x nodes x "
        "`accumulate_grad_batches`), and a batch that does not divide (7 on 2 or 4 devices) stops "
        "the run before any step; every training prints its global batch and learning rate",
        option="`batch_sizes: per_device` (Lightning's convention: 7 per device, 7N in all, same lr and "
        "steps), `accumulate_grad_batches`, or a batch that divides (8 on 2 or 4 devices)",
        why="a recipe means its global batch: 7N images a step at the same learning rate and steps is "
        "another recipe (users report 66.5 vs 67.0 mIoU from 2 vs 4 GPUs)",
    ),
    Row(
        "Batch, crop",
        "batch {vgg16[batch_size]}, crop {vgg16[crop_size]}",
        "batch 7, crop 321",
        "the same",
        option="`batch_size`, `crop_size`",
        why="paper",
    ),
    Row(
        "Augmentation, input",
        "not stated",
        "random scale U(0.5, 1.5), mirror, crop; Caffe BGR mean",
        "random scale U(0.5, 1.5), mirror, crop; batches in ImageNet RGB mean / std, converted inside "
        "the network to the space of its weights (Caffe trunk: BGR, 0-255, Caffe mean subtracted)",
        option="`scale_range`, `hflip`, `pixel_mean`, `pixel_std`, `backbone_kwargs: {{input_space: ...}}`",
        why="the input follows the weights; data, CRF and logs keep one convention",
    ),
    Row(
        "Dropout",
        "{vgg16[dropout]}",
        "0.5 (fc6, fc7)",
        "0.5 after VGG16's fc6 / fc7; DeepLab v2's ResNet head has no dropout layer",
        option="`dropout`",
        why="paper; DeepLab v2 ResNet-101 has nowhere to put it",
    ),
    Row(
        "Threshold on SC (P3)",
        "{vgg16[tau_coarse]} (VGG16) / {resnet101[tau_coarse]} (ResNet-101), Table IV",
        "-",
        "the paper's in the configs (`select: {{tau_coarse}}`; unset: the SF threshold)",
        option="`tau_coarse`, `keep_coarse` (a share)",
        why="paper; the scale depends on the objectness F (next rows, docs/scoring.md)",
    ),
    Row(
        "Threshold on SF (P4, P5)",
        "{vgg16[tau]} (VGG16) / {resnet101[tau]} (ResNet-101), Table IV",
        "the selected images given as a list",
        "the paper's in the configs (`select: {{tau}}`, default 0.85)",
        option="`tau`, `keep` (a share), `mode: soft`",
        why="paper",
    ),
    Row(
        "Objectness F in Eq. 3",
        "BING [40], b = {vgg16[b]}",
        "-",
        "edge-alignment mask objectness, b = 0.1",
        option="any callable (`CoarseSettings.objectness`), or none",
        why="BING needs trained models that no package ships; F^0.1 of a typical mask is about 0.93, "
        "so every AC moves (docs/scoring.md)",
    ),
    Row(
        "AC (Eq. 3)",
        "as printed (its prec is recall w.r.t. H, its rec the IoU)",
        "-",
        "as printed (`definition: paper`)",
        option="`definition: fmeasure`",
        why="paper",
    ),
    Row(
        "Reference masks",
        "DSS saliency + dense CRF, iterative erasing for several objects",
        "-",
        "your saliency PNGs (`saliency`), else a built-in classical method; CRF",
        option="`saliency`, a callable",
        why="DSS cannot be shipped",
    ),
    Row(
        "Mask scorer network",
        "Table I, 4-channel input at 256 x 256",
        "not released",
        "`MaskScorer(arch='table1')`: Table I transcribed; output clipped to [0, 1] for scoring",
        option="`arch: light` (same layers, CPU widths); `method: agreement` (`AgreementNet`)",
        why="paper; the agreement scorer is this library's scorer for small data, chosen by "
        "measurement (docs/scoring.md)",
    ),
    Row(
        "Mask scorer training",
        "l2 loss (Eq. 6), lr {vgg16[scorer_lr]}, batch {vgg16[scorer_batch_size]}, "
        "{vgg16[scorer_max_epochs]} epochs, about 10k synthesised samples",
        "not released",
        "the paper's values in the configs",
        option="`scorer: {{model: {{lr}}, batch_size, max_epochs}}`",
        why="paper",
    ),
    Row(
        "Mask scorer training set",
        "AC >= 0.8 positives (~4k), AC <= 0.3 negatives (~1k), eroded or erased good masks (~3k), "
        "cut-paste of AC >= 0.9 foregrounds on the background of AC >= 0.3 images (~2k)",
        "not released",
        "the same kinds, thresholds and proportions (`SynthesisSettings`)",
        option="`samples_per_image`, the shares, `degradations: [dilate]`",
        why="paper",
    ),
    Row(
        "Test scales",
        "multi-scale fusion (scales not given)",
        "{released[test_scales]}, fused by max",
        "the release's scales, fused by mean",
        option="`test_scales`, `test_fuse: max`",
        why="the paper names no scales",
    ),
    Row(
        "Test flip",
        "no (`test_flip`: {vgg16[test_flip]})",
        "no",
        "off",
        option="`test_flip: true`",
        why="neither the paper nor the release flips",
    ),
    Row(
        "Test CRF",
        "dense CRF [47] (`crf`: {vgg16[crf]})",
        "Gaussian 3/3, bilateral 80/13/10, 10 iterations",
        "the release's parameters",
        option="`crf_params`, `crf: false`",
        why="the paper gives no parameters",
    ),
    Row(
        "Semi-supervised split (Tables IX, X)",
        'VGG16; 1.4k strong masks (the text\'s "1449") + 9k weak proxies (Table IX\'s "0.9k")',
        "-",
        "`retrain: {{strong_ids: FILE}}`: ground truth for the listed ids, proxies for the rest",
        option="any list",
        why="paper; VOC's 1,464 `train` ids are the usual strong set",
    ),
)
