"""Expand an experiment's sweep grid into its jobs without running them (``make plan-<id>``).

The expansion is Hydra's own: the experiment file's ``hydra.sweeper.params`` first, then the command-line
sweeps (which win for the same key), split by Hydra's BasicSweeper; each job's run directory is what Hydra
would compute for it, so planning, resuming and collecting agree on where a job lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, open_dict

from normrepro.analysis.spec_check import check_experiment, check_overrides
from normrepro.config import CONFIG_DIR, register_configs
from normrepro.errors import ConfigError


@dataclass
class Job:
    overrides: list[str]  # the job's own sweep values
    run_dir: Path
    cfg: DictConfig  # the job's composed config (hydra node removed)

    @property
    def done(self) -> bool:
        return (self.run_dir / "DONE").exists()


def _split_cli(cli: list[str]) -> tuple[list[str], list[str]]:
    """Separate Hydra's own overrides (launcher etc.), which change no job, from the task's."""
    hydra_own = [o for o in cli if o.lstrip("+~").startswith("hydra")]
    return hydra_own, [o for o in cli if o not in hydra_own]


def plan_jobs(experiment: str, scale: str = "cpu", cli: list[str] | None = None, check: bool = True) -> list[Job]:
    """The experiment's jobs; with ``check`` its derived / claims / plots blocks are checked against them
    first (spec_check), so a typo fails before any job trains."""
    register_configs()
    _, task_cli = _split_cli(list(cli or []))
    if not (Path(CONFIG_DIR) / "experiment" / f"{experiment}.yaml").is_file():
        known = sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
        raise ConfigError(f"unknown experiment {experiment!r}: no configs/experiment/{experiment}.yaml; "
                          f"valid: {', '.join(known)}")
    base = [f"experiment={experiment}", f"scale={scale}"]
    parser = OverridesParser.create()
    with initialize_config_dir(config_dir=str(Path(CONFIG_DIR).resolve()), version_base="1.3"):
        root = compose("train", overrides=base + [o for o in task_cli if not _is_sweep(parser, o)],
                       return_hydra_config=True)
        params = root.hydra.sweeper.params or {}
        sweep = [f"{k}={v}" for k, v in params.items()] + task_cli
        grid = BasicSweeper.split_arguments(parser.parse_overrides(sweep), max_batch_size=None)[0]
        jobs = []
        for overrides in grid:
            cfg = compose("train", overrides=base + list(overrides), return_hydra_config=True)
            run_dir = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
            with open_dict(cfg):
                del cfg["hydra"]
            jobs.append(Job(list(overrides), run_dir, cfg))
    if not jobs:
        raise ConfigError(f"experiment {experiment}: the sweep ({' '.join(sweep)}) expands to no jobs; give every "
                          "swept key at least one value")
    if check:
        check_overrides([j.cfg for j in jobs], task_cli)
        check_experiment([j.cfg for j in jobs], task_cli)
    return jobs


def _is_sweep(parser: OverridesParser, override: str) -> bool:
    return parser.parse_override(override).is_sweep_override()
