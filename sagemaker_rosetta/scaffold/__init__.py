"""``rosetta init``: a new model project in Python, R or Julia that passes ``rosetta conform`` as written.

``init_project("python", "my-model", task="regression")`` writes the Dockerfile (``FROM`` the
runtime image), the model file, the conformance manifest, sample data, a README, a
``.dockerignore`` and a GitHub Actions workflow; see :mod:`sagemaker_rosetta.scaffold.project`.
"""

from sagemaker_rosetta.scaffold.languages import LANGUAGES, TASKS
from sagemaker_rosetta.scaffold.project import Project, ScaffoldError, init_project

__all__ = ["LANGUAGES", "TASKS", "Project", "ScaffoldError", "init_project"]
