"""qinglang_nlp._gc: pauses of the garbage collector counted across threads, so that concurrent bulk work (two
scans in two threads) cannot leave the collector off; and the lexicon's scan and match_many built on it."""
from __future__ import annotations

import gc
import multiprocessing
import threading

import pytest

from qinglang_nlp import _gc
from qinglang_nlp.lexicon import LexiconMatcher


@pytest.fixture(autouse=True)
def collector_on():
    assert gc.isenabled()
    yield
    gc.enable()


def test_interleaved_pauses_restore_what_the_first_found():
    # two owners (threads, or a scan and the generator it reads from) pausing out of step: with each one reading
    # gc.isenabled() for itself, B would read A's pause as "off" and could leave the collector off for good
    _gc.pause()  # A
    assert not gc.isenabled()
    _gc.pause()  # B
    _gc.resume()  # A ends first
    assert not gc.isenabled()  # B still works
    _gc.resume()  # B
    assert gc.isenabled()
    with _gc.paused(), _gc.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off():
    gc.disable()
    with _gc.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_resume_without_pause_is_an_error():
    with pytest.raises(RuntimeError, match="without a matching pause"):
        _gc.resume()
    assert gc.isenabled()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="workers need fork")
def test_scans_in_threads_leave_the_collector_on():
    m = LexiconMatcher.default().build()
    texts = ["姐妹们快去打投！控评组集合", "前面路口交通管制，绕行吧", "你就是个垃圾，沙比 nmsl"] * 60
    expected = m.match_many(texts)
    errors: list[BaseException] = []

    def work(workers: int) -> None:
        try:
            for _ in range(3):
                assert list(m.scan(texts, workers=workers, chunk_size=13)) == expected
                assert m.match_many(texts[:30]) == expected[:30]
        except BaseException as e:  # noqa: BLE001 -- reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in (1, 1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert gc.isenabled() and _gc._depth == 0


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_child_forked_while_another_thread_holds_the_lock_does_not_hang():
    import os
    import time

    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with _gc._lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: the lock was held by a thread that does not exist here
        try:
            with _gc.paused():
                pass
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    release.set()
    t.join()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child hung on the collector lock")
