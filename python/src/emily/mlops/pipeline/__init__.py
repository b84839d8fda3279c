"""The appraisal model's DVC pipeline: prepare → validate → embed → drift → train → evaluate.

Each stage is ``python -m emily.mlops.pipeline <stage>`` run by DVC in the pipeline directory
(``pipeline/dvc.yaml``), reading ``params.yaml`` and writing DVC-tracked outputs."""
