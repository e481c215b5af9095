"""What a container's exit code means on SageMaker, and which clause it points to."""

from __future__ import annotations

from sagemaker_rosetta.doctor.findings import Finding

#: the exit codes that say more than "it failed", in a few words (added to the evidence of a finding)
MEANING = {137: "killed with SIGKILL: on SageMaker nearly always out of memory",
           143: "stopped by SIGTERM", 127: "the command was not found", 126: "the command cannot be executed",
           139: "segmentation fault"}


def explain(code: int | None, *, word: str = "train", reason: str = "") -> Finding | None:
    """A finding for an exit code that says more than "it failed" (137, 143, 127, 126, 125, 139);
    None for 0, unknown, or a plain error code (1, 255: the failure file says why, T-17)."""
    low = reason.lower()
    if code == 137:
        if "maxruntimeinseconds" in low:
            return Finding("T-21", f"`{word}` was killed (SIGKILL) after MaxRuntimeInSeconds: it did not stop "
                           "within 120 s of SIGTERM", "handle SIGTERM: save a checkpoint and exit (Rosetta's "
                           "runtimes do; raise MaxRuntimeInSeconds if the job needs longer)", f"exit {code}")
        return Finding("T-16" if word == "train" else "S-08",
                       f"`{word}` was killed with SIGKILL (exit 137): on SageMaker almost always the "
                       "out-of-memory killer (CloudWatch shows the memory at the instance's limit)",
                       "use an instance type with more memory, or load/process the data in smaller pieces "
                       "(chunks, float32, fewer workers)", f"exit {code}")
    if code == 143:
        return Finding("T-21", f"`{word}` was stopped (SIGTERM, exit 143): StopTrainingJob, MaxRuntimeInSeconds "
                       "or a managed-spot interruption", "save checkpoints to /opt/ml/checkpoints and resume "
                       "from them (T-13), or raise MaxRuntimeInSeconds", f"exit {code}")
    if code == 127 or "executable file not found" in low or ("no such file or directory" in low and "exec" in low):
        return Finding("C-01", f"`{word}` was not found in the image (exit 127; on AWS: exec: \"{word}\": "
                       "executable file not found in $PATH)", f"put an executable named `{word}` on PATH "
                       f"(COPY it, chmod +x, ENV PATH=…) or use an exec-form ENTRYPOINT that handles `{word}`",
                       f"exit {code}" if code is not None else reason[:120])
    if code == 126:
        return Finding("C-01", f"`{word}` exists but cannot be executed (exit 126: not executable, or a script "
                       "whose #! interpreter is missing)", f"chmod +x the `{word}` script and check its #! line",
                       f"exit {code}")
    if "exec format error" in low:
        return Finding("C-08", "exec format error: the image was built for another CPU architecture",
                       "build for the instance's architecture: docker build --platform linux/amd64 (or "
                       "linux/arm64 for Graviton types)", reason[:160])
    if code == 139:
        return Finding("T-16" if word == "train" else "S-03", f"`{word}` crashed with a segmentation fault "
                       "(exit 139): a native library", "run the same step locally with the same image to get "
                       "the native backtrace; check that compiled packages match the image's libraries",
                       f"exit {code}")
    return None
