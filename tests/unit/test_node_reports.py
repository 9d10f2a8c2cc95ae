"""What a compute node writes and sends for each state change of an execution."""

from __future__ import annotations

from pathlib import Path

from edge.compute import agent
from edge.compute.runner import Outcome
from edge.config import load_config
from edge.models import LOST_DETAIL, ComputeState, Execution, RunOutput
from edge.transport.messages import ExecutionUpdate


async def test_a_report_is_the_same_as_the_validated_models(tmp_path: Path) -> None:
    """The node assembles its ComputeState and ExecutionUpdate without validation: they
    must equal, byte for byte, what validating the same values gives, and the update
    must not share its Details with the execution (one is stored, the other sent)."""
    config = load_config(None, {"node.data_dir": str(tmp_path)}, environ={})
    node = agent.ComputeNode(config, [])
    await node.ledger.open()
    try:
        execution = Execution(ID="e-1", JobID="j-1")
        outcomes = [
            Outcome(agent.ComputeStateType.RUNNING, "Running"),
            Outcome(
                agent.ComputeStateType.FAILED,
                'lost "here"\n',
                RunOutput(Stdout="out", ExitCode=3, ErrorMsg="boom"),
                details={LOST_DETAIL: "node restarted"},
            ),
        ]
        for outcome in outcomes:
            await node._report(execution, outcome)
            (sent,) = [u for u in node._unsent.values() if u.State == outcome.state]
            validated = ExecutionUpdate.model_validate(sent.model_dump())
            assert sent.model_dump_json() == validated.model_dump_json()
            state = ComputeState.model_validate(execution.ComputeState.model_dump())
            assert execution.ComputeState.model_dump_json() == state.model_dump_json()
            assert sent.Details == execution.ComputeState.Details
            assert sent.Details is not execution.ComputeState.Details
        stored = await node.ledger.get("e-1")
        assert stored is not None and stored.ComputeState.Details == {LOST_DETAIL: "node restarted"}
    finally:
        await node.ledger.close()
