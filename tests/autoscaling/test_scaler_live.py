"""The external scaler against a real server, real workers and a real broker, called as KEDA calls it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from celerystatus import CeleryStatusClient, ScalingAction
from celerystatus.scaling import ClusterLoad, desired_workers
from celerystatus_server.config import Settings
from celerystatus_server.local_redis import RedisProcess
from celerystatus_server.server import StatusServer
from tests.support.holds import Hold
from tests.support.keda_client import KedaContract, KedaScalerClient, StreamRecorder
from tests.support.server import running_server
from tests.support.waiting import wait_for
from tests.support.workers import WorkerFactory, control_app

pytestmark = pytest.mark.slow

INTERVAL = 0.5
NOT_YET = (grpc.RpcError,)  # UNAVAILABLE until the first round is in


@pytest.fixture
def server(redis_url: str, worker_factory: WorkerFactory) -> Iterator[StatusServer]:
    # One pool slot: every task beyond the first waits.
    worker_factory("keda1", concurrency=1)
    # "spare" is measured (--queue) but consumed by nobody.
    settings = Settings(broker_url=redis_url, grpc_address="127.0.0.1:0", refresh_interval=INTERVAL, queues=("spare",))
    with running_server(settings) as srv:
        yield srv


@pytest.fixture
def keda(server: StatusServer, keda_contract: KedaContract) -> Iterator[KedaScalerClient]:
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield KedaScalerClient(channel, keda_contract)


@pytest.fixture
def stream(keda: KedaScalerClient) -> Iterator[StreamRecorder]:
    recorder = StreamRecorder(keda.stream_is_active({}))
    yield recorder
    recorder.close()


def test_backlog_activity_and_stream_follow_the_cluster(
    server: StatusServer,
    keda: KedaScalerClient,
    redis_url: str,
    worker_factory: WorkerFactory,
) -> None:
    everything: dict[str, str] = {}
    assert keda.metric_spec(everything) == [("celery-backlog-workers", 1, 1.0)]
    wait_for(lambda: server.store.latest().status.workers == 1, timeout=20, message="worker seen")
    assert wait_for(lambda: keda.desired(everything) == 0, timeout=10, ignore=NOT_YET)
    assert keda.is_active(everything) is False
    stream = StreamRecorder(keda.stream_is_active(everything))
    hold = Hold(redis_url)
    try:
        wait_for(lambda: stream.received == [False], timeout=10, message="initial stream answer")

        for _ in range(3):
            worker_factory.send("tests.hold", hold.token)
        # One runs, two wait for the only slot: 3 tasks over a pool of 1.
        wait_for(lambda: keda.desired(everything) == 3, timeout=15, message="backlog of 3 seen")
        assert keda.is_active(everything) is True
        wait_for(lambda: stream.received == [False, True], timeout=10, message="stream sends the crossing")
        assert keda.desired({"targetPerWorker": "2"}) == 2
        assert keda.desired({"metric": "saturation", "targetPerWorker": "0.5"}) == 6
        assert keda.is_active({"metric": "saturation", "activationThreshold": "2.5"}) is True
        assert keda.is_active({"activationThreshold": "3"}) is False
        assert keda.desired({"queues": "spare"}) == 0
        assert keda.is_active({"queues": "spare"}) is False
        assert keda.desired({"queues": "celery"}) == 3
        # A queue the server does not measure would read as empty forever: refused instead.
        with pytest.raises(grpc.RpcError) as info:
            keda.desired({"queues": "celery,unheard-of"})
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "unheard-of" in (info.value.details() or "")

        # The SDK answers from the same computation: at full utilisation and
        # without a max, scaling_advice wants what the scaler reports.
        with CeleryStatusClient(server.grpc_target) as sdk:
            assert desired_workers(ClusterLoad.of(sdk.get_status())) == 3
            advice = sdk.scaling_advice(0, 100, target_utilisation=1.0)
        assert (advice.action, advice.desired_workers) == (ScalingAction.UP, 3)

        hold.release(3)
        wait_for(lambda: keda.desired(everything) == 0, timeout=15, message="backlog drained")
        assert keda.is_active(everything) is False
        wait_for(lambda: stream.received == [False, True, False], timeout=10, message="stream sends the drain")
        assert stream.error is None
    finally:
        hold.release(3)
        hold.close()
        stream.close()


def test_value_is_held_while_the_broker_is_down(
    redis_process: RedisProcess, keda_contract: KedaContract
) -> None:
    url = redis_process.url(0)
    producer = control_app(url)
    # Five messages and no worker: demand 5 over the default pool of 4 wants 2 workers.
    for _ in range(5):
        producer.send_task("tasks.cleanup_old_evaluations", queue="celery")
    producer.close()
    settings = Settings(broker_url=url, grpc_address="127.0.0.1:0", refresh_interval=INTERVAL)
    seen: dict[str, str] = {}
    unseen = {"targetPerWorker": "5"}
    with running_server(settings) as server, grpc.insecure_channel(server.grpc_target) as channel:
        keda = KedaScalerClient(channel, keda_contract)
        assert wait_for(lambda: keda.desired(seen) == 2, timeout=15, ignore=NOT_YET)
        assert keda.is_active(seen) is True
        stream = StreamRecorder(keda.stream_is_active(seen))
        try:
            wait_for(lambda: stream.received == [True], timeout=10)

            redis_process.stop()
            down = wait_for(lambda: not (s := server.store.latest()).status.connected and s, timeout=15)
            assert keda.desired(seen) == 2, "the last good value is held, not zeroed"
            assert keda.is_active(seen) is True
            for call in (lambda: keda.desired(unseen), lambda: keda.is_active(unseen)):
                with pytest.raises(grpc.RpcError) as info:
                    call()
                assert info.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "broker" in (info.value.details() or "")
            # Rounds go on failing; the stream says nothing new meanwhile.
            wait_for(lambda: server.store.latest().version >= down.version + 3, timeout=15)
            assert keda.desired(seen) == 2
            assert stream.received == [True] and stream.error is None

            # The broker comes back empty (no persistence): the scaler follows it again.
            redis_process.start()
            wait_for(lambda: keda.desired(seen) == 0, timeout=30, ignore=NOT_YET)
            wait_for(lambda: stream.received == [True, False], timeout=10)
        finally:
            stream.close()
