"""StopSignals: a signal inside the block asks it to stop and is handed on, unchanged, as the block ends.

Every test starts from the dispositions a terminal gives a program (the `python_signals` fixture: SIGINT on
Python's handler, SIGTERM on the default), whatever the suite inherited: run as a background job, SIGINT
comes ignored. The ignored case is tested on purpose, by the tests that set it.
"""

import os
import signal
import threading

import pytest

from edgemtl.runtime.stop_signals import StopSignals

pytestmark = pytest.mark.usefixtures("python_signals")


def test_ctrl_c_inside_the_block_waits_for_its_end_and_then_raises_as_before():
    finished_the_frame = False
    with pytest.raises(KeyboardInterrupt), StopSignals() as stopping:
        os.kill(os.getpid(), signal.SIGINT)
        assert stopping.requested
        finished_the_frame = True  # the code after the signal still ran
    assert finished_the_frame
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, "the previous handler is back"


def test_sigterm_goes_to_the_handler_that_was_there_before():
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with StopSignals() as stopping:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stopping.requested and not seen
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_no_signal_no_change_and_an_ignored_signal_stays_ignored(number):
    signal.signal(number, signal.SIG_IGN)  # as a background job inherits SIGINT; the fixture puts it back
    with StopSignals() as stopping:
        assert signal.getsignal(number) is signal.SIG_IGN
        os.kill(os.getpid(), number)  # ignored, by the system: nothing is asked
        assert not stopping.requested
    assert signal.getsignal(number) is signal.SIG_IGN


def test_off_the_main_thread_nothing_is_touched():
    handlers: list[object] = []

    def worker() -> None:
        with StopSignals():
            handlers.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert handlers == [signal.default_int_handler]


def test_an_error_in_the_block_wins_over_a_pending_signal():
    with pytest.raises(OSError, match="disk full"), StopSignals() as stopping:
        os.kill(os.getpid(), signal.SIGINT)
        assert stopping.requested
        raise OSError("disk full")  # what the user must see, not "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_signal_acts_at_once():
    reached = False
    with pytest.raises(KeyboardInterrupt), StopSignals():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the loop has not stopped: the second one raises here
        reached = True
    assert not reached
