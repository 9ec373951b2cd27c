"""How many CPU threads a stage computes with: its share of the machine.

Torch's intra-op pool (OpenMP underneath) takes every core by default. That is right
for a stage started by hand, and wrong for two stages side by side: each one's threads
then wait on the other's, and both run many times slower than alone (BENCHMARKS.md,
"Threads per stage"). So a runner that starts stages at once (the Prefect flow,
``wavegen run``) gives each one the cores divided by the stages it runs at that moment,
through the environment variable :data:`THREADS_VARIABLE`, and asks OpenMP to sleep
rather than spin while it waits when the stage shares the cores
(``OMP_WAIT_POLICY=PASSIVE``, :func:`runner_environment`).
A stage applies its share before any compute (:func:`apply`, called by every stage's
entry point).

This is an environment variable, not a DVC param, on purpose: the share says where a
stage runs, not what it computes, so changing it must not rerun anything. What a stage
computes does not depend on it beyond floating-point rounding: stages that only read,
render and cut data write the same bytes at any count, while a training stage's sums
(a loss's mean, a convolution's weight gradient) are split between the threads, so its
weights differ in the last bits (tests/pipelines/test_flow_on_the_tiny_pipeline.py
holds both to that; BENCHMARKS.md, "Threads per stage", measures how far it carries).
Where the same bytes matter, set ``WAVEGEN_THREADS`` yourself: a runner keeps it
(:func:`runner_environment`), and a stage started by hand applies it too.
"""

from __future__ import annotations

import os

from wavegen_core.errors import WavegenError

THREADS_VARIABLE = "WAVEGEN_THREADS"
# A file holding the share as it changes while the stage runs (stages beside it end or
# start); a training loop follows it (:func:`follow_share`).
SHARE_FILE_VARIABLE = "WAVEGEN_THREADS_FILE"
# Read by the OpenMP runtime when it loads (when torch is imported), so only a runner,
# which sets it before the stage's process starts, can choose it.
WAIT_POLICY_VARIABLE = "OMP_WAIT_POLICY"
# Libraries that size their own pools from these at load time; set for child processes
# (torchrun's ranks) so that they inherit the share.
POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or
    ``taskset`` narrows), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def share(cores: int, at_once: int) -> int:
    """Each stage's threads when ``at_once`` stages share ``cores``: at least one."""
    return max(1, cores // max(1, at_once))


def requested(environ: os._Environ[str] | dict[str, str] | None = None) -> int | None:
    """The share a runner gave this stage (``WAVEGEN_THREADS``), or ``None`` when it was
    started by hand. Raises :class:`WavegenError` naming the variable when it is not a
    whole number of 1 or more."""
    environ = os.environ if environ is None else environ
    text = environ.get(THREADS_VARIABLE, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise WavegenError(f"{THREADS_VARIABLE} = {text!r}: must be a whole number of 1 or more")
    return value


def apply() -> int:
    """Give torch (and the OpenMP and MKL pools of this process's children) this stage's
    share; return the thread count.

    With no share given, the stage keeps torch's own choice: ``OMP_NUM_THREADS`` when
    set, otherwise every core.
    """
    import torch

    threads = requested()
    if threads is None:
        return torch.get_num_threads()
    # Under torchrun the share is the whole stage's, split between its ranks here.
    threads = share(threads, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    torch.set_num_threads(threads)
    for name in POOL_VARIABLES:
        os.environ[name] = str(threads)
    return threads


_followed: dict[str, tuple[int, int]] = {}


def follow_share() -> int | None:
    """Apply the runner's newest share, if it changed since the last call; the thread
    count applied, or None when nothing changed (one ``stat`` then: cheap enough for
    every training step). A stage that ran beside others gets their cores when they
    end, instead of leaving them idle until it ends too."""
    path = os.environ.get(SHARE_FILE_VARIABLE)
    if not path:
        return None
    try:
        found = os.stat(path)
        # Each share is a new file (write_share), so its inode tells a rewrite apart
        # even within the file system's clock tick.
        changed = (found.st_ino, found.st_mtime_ns)
        if _followed.get(path) == changed:
            return None
        _followed[path] = changed
        text = open(path).read()  # noqa: SIM115, PTH123 (a few bytes)
        count = requested({THREADS_VARIABLE: text})
    except (OSError, WavegenError):
        return None  # the runner is rewriting it, or gone: keep the current count
    if count is None:
        return None
    import torch

    count = share(count, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return count


def write_share(path: str | os.PathLike[str], threads: int) -> None:
    """Give a running stage a new share through its file (replaced whole, so a stage
    never reads half of it)."""
    staging = f"{os.fspath(path)}.partial"
    with open(staging, "w") as handle:  # noqa: PTH123
        handle.write(str(threads))
    os.replace(staging, path)


def runner_environment(
    threads: int, share_file: str | os.PathLike[str] | None = None
) -> dict[str, str]:
    """What a runner adds to a stage's environment to give it ``threads`` threads: the
    share, and, when the stage shares the cores with others, OpenMP's passive waiting
    (unless the user chose a policy).

    Passive waiting keeps two stages from burning each other's cores while their
    threads wait, but costs a stage alone: the transcriber trains about 30 % slower
    with it (BENCHMARKS.md, "Threads per stage"), so a stage given every core keeps
    OpenMP's default. A ``WAVEGEN_THREADS`` the user set is kept: it pins every stage
    to one count in every runner, the way to get the same bytes from the flow as from
    ``dvc repro`` (a training run's floating-point sums depend on how many threads
    split them). With ``share_file``, the stage follows the share the runner writes
    there as stages beside it end or start (:func:`write_share`).
    """
    pinned = requested()
    environment = {THREADS_VARIABLE: str(pinned or threads)}
    if share_file is not None and pinned is None:
        environment[SHARE_FILE_VARIABLE] = os.fspath(share_file)
    if WAIT_POLICY_VARIABLE in os.environ:
        environment[WAIT_POLICY_VARIABLE] = os.environ[WAIT_POLICY_VARIABLE]
    elif threads < machine_cores():
        environment[WAIT_POLICY_VARIABLE] = "PASSIVE"
    return environment
