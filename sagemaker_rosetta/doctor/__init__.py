"""``rosetta doctor``: what is wrong with an image, a failed job or run, or a local endpoint, said in
SageMaker's terms, each finding with the contract clause it breaks (docs/contract.md) and what to do.

- :mod:`.image`: a look inside the image (``train``/``serve`` on PATH, a Flask/Werkzeug debug server),
  then the conformance suite's own checks on a short list of clauses (``QUICK``; ``--deep``: all).
- :mod:`.folder`: a failed ``rosetta train`` job or pipeline execution, from its exit code, failure file
  and reason; nothing runs.
- :mod:`.endpoint`: a running ``rosetta endpoint``: container state, /ping, ports, logs.
- :mod:`.advice` and :mod:`.exitcodes`: each clause and exit code in SageMaker's words, with the fix.
- :mod:`.findings`: the :class:`Finding` and its one-line form; :mod:`.cli`: the command.

See docs/doctor.md.
"""

from __future__ import annotations

from sagemaker_rosetta.doctor.findings import Finding
from sagemaker_rosetta.doctor.folder import FolderError, diagnose_folder
from sagemaker_rosetta.doctor.image import QUICK, Diagnosis, diagnose_image

__all__ = ["QUICK", "Diagnosis", "Finding", "FolderError", "diagnose_folder", "diagnose_image"]
