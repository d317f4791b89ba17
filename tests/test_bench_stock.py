"""`make bench`'s stock configuration runs on Rasa's own runtime (issue 21): Rasa's `rasa run`
command, Rasa's own SQL tracker store and REST channel, nothing of the clinic's in the Rasa process; and the
bench's targets are issue 21's, with no target on the ratio to stock."""

import yaml

from scripts import bench
from scripts.bench_stack import BenchStack


def test_the_stock_rasa_server_is_rasa_s_own_command_with_rasa_s_own_stores(tmp_path):
    stack = BenchStack(tmp_path, model=tmp_path / "stock.tar.gz", rasa_own_runtime=True)
    command = stack.commands()["rasa"]
    assert command[0].endswith("/rasa") and command[1] == "run"
    assert not any("clinic" in part for part in command[:2]) and "-m" not in command
    assert command[command.index("--model") + 1] == str(tmp_path / "stock.tar.gz")
    endpoints = yaml.safe_load(open(command[command.index("--endpoints") + 1]))
    assert endpoints["tracker_store"]["type"] == "SQL" and "lock_store" not in endpoints
    assert "clinic" not in yaml.safe_dump(endpoints)
    assert endpoints["action_endpoint"]["url"] == f"http://127.0.0.1:{stack.actions_port}/webhook"
    assert stack.process_env("rasa")["ACTION_SERVER_TOKEN"] == stack.action_token
    credentials = yaml.safe_load(open(command[command.index("--credentials") + 1]))
    assert credentials == {"rest": None}  # Rasa's own REST channel, not the clinic's


def test_the_clinic_s_rasa_server_is_still_the_launcher(tmp_path):
    command = BenchStack(tmp_path, model=tmp_path / "clinic.tar.gz").commands()["rasa"]
    assert command[1:3] == ["-m", "clinic.rasa_runtime.rasa_launch"]


def test_the_targets_are_issue_21_s_and_the_ratio_is_none_of_them():
    assert bench.TARGETS == {"p95_ms_at_10": 150.0, "turns_per_s_at_10": 60.0, "stack_peak_mb": 2560.0,
                             "rasa_ready_s": 15.0}
