"""Mixed-language SageMaker Pipelines: definition, AWS, and a local Docker runner.

Declare steps with :class:`Pipeline` (it compiles to SDK 3.x objects), then
``rosetta pipeline definition|upsert|start|run|graph FILE``. The CLI also takes SDK-native
pipeline files and definition JSON (see :mod:`rosetta_orchestrator.loader`).
"""

from rosetta_orchestrator.api import (
    ConditionHandle,
    ModelHandle,
    Pipeline,
    ProcessingHandle,
    RegisterHandle,
    StepHandle,
    TrainingHandle,
    TransformHandle,
    TuningHandle,
)

__all__ = ["ConditionHandle", "ModelHandle", "Pipeline", "ProcessingHandle", "RegisterHandle", "StepHandle",
           "TrainingHandle", "TransformHandle", "TuningHandle"]
