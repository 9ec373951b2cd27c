"""The Prefect flow that runs the DAG of ``dvc.yaml``.

Each stage is a Prefect task that runs ``dvc repro --single-item STAGE`` (see
:mod:`pipelines.dvc_runner`), started once every stage it depends on has finished, so
independent branches run at the same time while DVC stays the single truth about what
is up to date. Stages annotated ``meta: {gpu: true}`` carry the ``gpu`` tag and run one
at a time per flow run (one GPU per worker).

At most ``jobs`` stages run at once (default: one per core), and each is given the
cores divided by the stages running beside it as its torch threads
(:mod:`wavegen_core.threads`): stages that each took every core would wait on each
other's threads and run many times slower than one after another.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.tasks import exponential_backoff

from pipelines.dag import StageGraph, load_graph
from pipelines.dvc_repair import LOCK_FILE, repair_after_kill
from pipelines.dvc_runner import StageInterrupted, StageOutcome, dvc, outcome_of
from wavegen_core.threads import machine_cores, runner_environment, share, write_share

# Files a person would rather look at or listen to, linked from every run.
MEDIA_SUFFIXES = (".png", ".wav", ".html")
MEDIA_LINKS_PER_STAGE = 40
# The listening page the last stage writes, linked as its own artifact.
REPORT_STAGE, REPORT_PAGE = "evaluate", "index.html"
RETRIES = 3
RETRY_BACKOFF_SECONDS = 5.0


def _retry_only_interruptions(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a stage killed from outside; fail at once on the stage's own error."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, StageInterrupted)


@task(
    cache_policy=NO_CACHE,  # DVC, not Prefect, decides what is up to date
    retries=RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=RETRY_BACKOFF_SECONDS),
    retry_condition_fn=_retry_only_interruptions,
)
def run_stage(
    repo: str, stage: str, share: bool, threads: int, share_file: str | None = None
) -> StageOutcome:
    """Run one stage through DVC on ``threads`` threads (then on what the flow writes to
    ``share_file`` as stages beside it end); with ``share``, pull its inputs first and
    push after."""
    logger = get_run_logger()
    root = Path(repo)
    start = time.perf_counter()
    pull = ["--pull"] if share else []
    logger.info("stage %s: %d threads", stage, threads)
    lock_file = root / LOCK_FILE
    lock_before = lock_file.read_text() if lock_file.is_file() else ""
    try:
        output = dvc(
            ["--wait-for-lock", "repro", *pull, "--single-item", stage],
            root,
            logger.info,
            wait_while_busy=True,
            environment=runner_environment(threads, share_file),
        )
    except StageInterrupted:
        # A kill may have cut DVC's own files short; put them right before the retry.
        for repair in repair_after_kill(root, lock_before, stage):
            logger.warning("stage %s was killed: %s", stage, repair)
        raise
    if share:
        dvc(["--wait-for-lock", "push", "--run-cache", stage], root, logger.info)
    outcome = outcome_of(stage, output, time.perf_counter() - start)
    logger.info("stage %s: %s in %.1f s", stage, outcome.status, outcome.seconds)
    return outcome


@task(cache_policy=NO_CACHE)
def skip_stage(stage: str) -> StageOutcome:
    """A stage DVC reports up to date, with everything upstream of it: nothing to run."""
    return StageOutcome(stage=stage, status="skipped", seconds=0.0)


def unchanged_stages(root: Path, graph: StageGraph) -> set[str]:
    """Stages that ``dvc repro`` would skip: up to date (``dvc status``, in-process, one
    hashing pass for all of them) and every upstream stage skipped too.

    Asking once here spares a DVC process per up-to-date stage; a stage whose status
    changed, or whose outputs must first be pulled, still goes through ``dvc repro``.
    """
    import contextlib

    from dvc.repo import Repo

    with contextlib.chdir(root), Repo(str(root)) as repo:
        changed = set(repo.status(targets=graph.names))
    unchanged: set[str] = set()
    for stage in graph.stages:  # topological: upstream stages are decided first
        if stage.name not in changed and set(stage.upstream) <= unchanged:
            unchanged.add(stage.name)
    return unchanged


def schedule(graph: StageGraph, gpu_slots: int) -> dict[str, list[str]]:
    """For each stage, the stages it must wait for.

    Upstream stages and path conflicts come from the graph; GPU stages additionally
    queue behind the GPU stage ``gpu_slots`` places before them.
    """
    waits = {stage.name: graph.run_after(stage.name) for stage in graph.stages}
    gpu_stages = [stage.name for stage in graph.stages if stage.gpu]
    for index, name in enumerate(gpu_stages):
        if index >= gpu_slots:
            waits[name] = sorted({*waits[name], gpu_stages[index - gpu_slots]})
    return waits


@dataclass
class Dispatch:
    """Which stages may start now, and on how many threads each.

    ``waits`` is :func:`schedule`'s: what each stage must wait for. At most ``jobs``
    stages run at once; the stages started together get ``cores`` divided by the
    stages running once they have started, and :attr:`share` follows the running
    stages as they end.
    """

    waits: dict[str, list[str]]
    jobs: int
    cores: int
    done: set[str] = field(default_factory=set)
    running: set[str] = field(default_factory=set)
    stopped: bool = False  # after a failure nothing more starts

    def ready(self) -> list[str]:
        return [
            name
            for name, waits in self.waits.items()
            if name not in self.done and name not in self.running and set(waits) <= self.done
        ]

    def start(self) -> list[tuple[str, int]]:
        """The stages to start now, each with its thread count; marks them running."""
        if self.stopped:
            return []
        starting = self.ready()[: max(0, self.jobs - len(self.running))]
        self.running.update(starting)
        return [(name, self.share) for name in starting]

    @property
    def share(self) -> int:
        """Each running stage's threads: the cores over the stages running now. A stage
        that was started beside others follows it as they end (a training loop reads
        it each step), so a straggler does not leave a core idle."""
        return share(self.cores, len(self.running))

    def finish(self, name: str) -> None:
        self.running.discard(name)
        self.done.add(name)

    @property
    def finished(self) -> bool:
        return not self.running and (self.stopped or len(self.done) == len(self.waits))


def _flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [item for key, sub in value.items() for item in _flatten(f"{prefix}{key}.", sub)]
    return [(prefix.rstrip("."), value)]


def publish_artifacts(root: Path, graph: StageGraph, outcomes: list[StageOutcome]) -> None:
    """A table of DVC's metrics and a page of links to the pictures and audio."""
    from dvc.repo import Repo

    # In-process: DVC is already imported for the graph, a `dvc metrics show` would
    # pay its start-up again.
    with Repo(str(root)) as repo:
        shown = repo.metrics.show()
    rows = [
        {"file": file, "metric": name, "value": value}
        for file, content in shown.get("", {}).get("data", {}).items()
        for name, value in _flatten("", content.get("data", {}))
    ]
    create_table_artifact(key="dvc-metrics", table=rows, description="`dvc metrics show`")
    lines = ["# wavegen run", "", "| stage | status | seconds |", "|---|---|---|"]
    lines += [f"| {o.stage} | {o.status} | {o.seconds} |" for o in outcomes]
    for stage in graph.stages:
        media = sorted(
            path
            for out in stage.outs
            for path in ([root / out] if (root / out).is_file() else (root / out).rglob("*"))
            if path.suffix in MEDIA_SUFFIXES and path.is_file()
        )[:MEDIA_LINKS_PER_STAGE]
        if media:
            lines += ["", f"## {stage.name}", ""]
            lines += [f"- [{p.relative_to(root)}]({p.resolve().as_uri()})" for p in media]
    create_markdown_artifact(
        key="wavegen-outputs",
        markdown="\n".join(lines),
        description="stage outcomes, pictures and audio",
    )
    page = next(
        (
            root / out
            for stage in graph.stages
            if stage.name == REPORT_STAGE
            for out in stage.outs
            if Path(out).name == REPORT_PAGE
        ),
        None,
    )
    if page is not None and page.is_file():
        create_link_artifact(
            key="wavegen-report",
            link=page.resolve().as_uri(),
            link_text="the evaluation page",
            description="every model compared, with players (stage evaluate)",
        )


@flow(name="wavegen")
def pipeline(
    targets: list[str] | None = None,
    overrides: list[str] | None = None,
    experiment: str | None = None,
    repo: str = ".",
    share: bool = False,
    gpu_slots: int = 1,
    retry_backoff: float = RETRY_BACKOFF_SECONDS,
    jobs: int | None = None,
) -> list[StageOutcome]:
    """Run the stages of ``dvc.yaml`` (``targets`` and their upstream; default all).

    ``overrides`` are ``dvc exp run -S`` expressions (``data.max_pieces=48``), applied
    to params.yaml with DVC's own parser; the run is then saved as a DVC experiment
    (named ``experiment``, or by DVC). ``share`` pulls each stage's inputs from the
    DVC remote before it runs and pushes its outputs and run-cache after, for workers
    on several machines. ``gpu_slots`` bounds how many GPU stages run at once, ``jobs``
    how many stages of any kind (default: the cores this process may use); each
    stage's threads are the cores divided by the stages running with it. A stage
    killed from outside is retried after ``retry_backoff`` seconds, doubling each time.
    The first stage that fails stops new ones from starting; those running finish, then
    its error is raised.
    """
    logger = get_run_logger()
    root = Path(repo).resolve()
    if overrides:
        from dvc.utils.hydra import apply_overrides

        apply_overrides(root / "params.yaml", list(overrides))
        logger.info("params overridden: %s", " ".join(overrides))
    graph = load_graph(root).select(targets)
    logger.info("stages: %s", ", ".join(graph.names))
    # With sharing, every stage goes through DVC, so that up-to-date outputs are pushed too.
    unchanged = set() if share else unchanged_stages(root, graph)
    cores = machine_cores()
    dispatch = Dispatch(schedule(graph, gpu_slots), jobs or cores, cores)
    logger.info("at most %d stages at once on %d cores", dispatch.jobs, cores)
    futures: dict[str, PrefectFuture[StageOutcome]] = {}
    for stage_name in graph.names:
        if stage_name in unchanged:
            futures[stage_name] = skip_stage.with_options(name=f"stage {stage_name}").submit(
                stage_name, return_state=False
            )
            dispatch.done.add(stage_name)
    running: dict[str, PrefectFuture[StageOutcome]] = {}
    failure: BaseException | None = None
    shares = Path(tempfile.mkdtemp(prefix="wavegen-shares-"))
    published: dict[str, int] = {}
    try:
        while not dispatch.finished:
            for stage_name, threads in dispatch.start():
                stage_task = run_stage.with_options(
                    name=f"stage {stage_name}",
                    tags=["gpu"] if graph[stage_name].gpu else [],
                    retry_delay_seconds=exponential_backoff(backoff_factor=retry_backoff),
                )
                share_file = shares / f"{stage_name.replace('@', '.')}.threads"
                write_share(share_file, threads)
                published[stage_name] = threads
                future = stage_task.submit(
                    str(root), stage_name, share, threads, str(share_file), return_state=False
                )
                futures[stage_name] = running[stage_name] = future
            if not running:  # cannot happen while `waits` names only stages of the graph
                raise RuntimeError(f"no stage can start; waiting: {dispatch.waits}")
            ended = next(as_completed(list(running.values())))
            ended_name = next(name for name, future in running.items() if future is ended)
            dispatch.finish(ended_name)
            del running[ended_name]
            if ended.state.is_failed() and failure is None:
                failure = ended.state.result(raise_on_failure=False)
                dispatch.stopped = True
            # The stages still running take the cores the ended one leaves.
            for still in running:
                if published[still] != dispatch.share:
                    write_share(shares / f"{still.replace('@', '.')}.threads", dispatch.share)
                    published[still] = dispatch.share
    finally:
        shutil.rmtree(shares, ignore_errors=True)
    if failure is not None:
        raise failure
    outcomes = [futures[name].result() for name in graph.names]
    if overrides or experiment:
        name = ["-n", experiment] if experiment else []
        saved = dvc(["exp", "save", "--force", *name, *graph.names], root)
        logger.info("%s", saved.strip())
    publish_artifacts(root, graph, outcomes)
    return outcomes


if __name__ == "__main__":
    pipeline()
