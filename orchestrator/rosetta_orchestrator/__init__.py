"""Mixed-language SageMaker Pipelines: definition, AWS, and a local Docker runner.

Declare steps with :class:`Pipeline` (it compiles to SDK 3.x objects), then
``rosetta pipeline definition|upsert|start|run|graph FILE``.
"""

from rosetta_orchestrator.api import (
    ModelHandle,
    Pipeline,
    ProcessingHandle,
    StepHandle,
    TrainingHandle,
    TransformHandle,
)

__all__ = ["ModelHandle", "Pipeline", "ProcessingHandle", "StepHandle", "TrainingHandle", "TransformHandle"]
