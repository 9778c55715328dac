"""Test harness: starts the real chamferdb binary on a free loopback port.

    import harness
    with harness.Server() as srv:
        stub = search_pb2_grpc.SearchStub(srv.channel)

The binary comes from $CHAMFERDB_BIN and the generated Python stubs from
$CHAMFERDB_PYTHON_STUBS (CTest sets both); the data directory is a fresh temporary folder
unless one is given (to test restarts). The server binds 127.0.0.1 only and is always
stopped (SIGTERM, then SIGKILL) when the block exits.
"""
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

_STUBS = os.environ.get("CHAMFERDB_PYTHON_STUBS")
if _STUBS and _STUBS not in sys.path:
    sys.path.insert(0, _STUBS)

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from chamferdb.v1 import tensor_pb2  # noqa: E402

BIN = os.environ.get("CHAMFERDB_BIN", "")

_DTYPES = {
    np.dtype(np.float32): tensor_pb2.F32,
    np.dtype(np.float64): tensor_pb2.F64,
    np.dtype(np.int8): tensor_pb2.I8,
    np.dtype(np.int32): tensor_pb2.I32,
    np.dtype(np.int64): tensor_pb2.I64,
    np.dtype(np.complex64): tensor_pb2.C64,
    np.dtype(np.complex128): tensor_pb2.C128,
    np.dtype(np.uint8): tensor_pb2.U8,
}
_NP = {v: k for k, v in _DTYPES.items()}


def tensor(arr):
    """numpy array -> chamferdb.v1.Tensor (little-endian, row-major)."""
    arr = np.ascontiguousarray(arr)
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    return tensor_pb2.Tensor(shape=list(arr.shape), dtype=_DTYPES[np.dtype(dt)],
                             data=arr.astype(dt.newbyteorder("<")).tobytes())


def array(t):
    """chamferdb.v1.Tensor -> numpy array."""
    dt = _NP[t.dtype].newbyteorder("<")
    return np.frombuffer(t.data, dtype=dt).reshape(tuple(t.shape)).astype(_NP[t.dtype])


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _remove_file(path):
    try:
        os.remove(path)
    except OSError:
        pass


def die_with_parent():
    """preexec_fn for server processes: Linux delivers SIGTERM (graceful shutdown) to the
    child when the thread that started it exits, so no test leaves a server behind."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Server:
    """Runs `chamferdb --listen 127.0.0.1:PORT --data-dir DIR [extra args]`."""

    def __init__(self, data_dir=None, extra_args=(), port=None, startup_timeout=60.0,
                 credentials=None, target_name=None, env=None):
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="chamferdb-test-")
        if self._own_dir:
            # Tests that stop a server without cleanup() (restart tests reuse the directory)
            # still leave no data behind when the test process exits.
            atexit.register(shutil.rmtree, self.data_dir, True)
        self.extra_args = list(extra_args)
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.proc = None
        self.channel = None
        self.credentials = credentials  # grpc.ChannelCredentials for TLS servers
        self.target_name = target_name  # TLS name override (certificate's CN)
        self.env = env
        self.log_path = os.path.join(tempfile.gettempdir(), f"chamferdb-{self.port}.log")
        # The log is read back by failing tests (log()); it goes when the test process exits.
        atexit.register(_remove_file, self.log_path)

    def start(self):
        """Starts the server; it also stops (SIGTERM) when this test process dies, even when
        a failing setUpClass never reaches tearDownClass."""
        if not BIN or not os.path.exists(BIN):
            raise RuntimeError(f"CHAMFERDB_BIN does not name the server binary: {BIN!r}")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [BIN, "--listen", self.address, "--data-dir", self.data_dir] + self.extra_args,
            stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
            env=None if self.env is None else {**os.environ, **self.env})
        self.channel = self.new_channel()
        deadline = time.time() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log:\n{self.log()}")
            try:
                grpc.channel_ready_future(self.channel).result(timeout=0.5)
                break
            except grpc.FutureTimeoutError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"server did not start in time; log:\n{self.log()}")
        return self

    def new_channel(self, credentials=None):
        options = [("grpc.max_receive_message_length", 256 << 20),
                   ("grpc.max_send_message_length", 256 << 20)]
        credentials = credentials or self.credentials
        if credentials is None:
            return grpc.insecure_channel(self.address, options=options)
        if self.target_name:
            options.append(("grpc.ssl_target_name_override", self.target_name))
        return grpc.secure_channel(self.address, credentials, options=options)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-8000:].decode(errors="replace")
        except OSError:
            return ""

    def kill(self):
        """SIGKILL: simulates a crash. The data directory is kept."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_channel()

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns the exit code."""
        code = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
        elif self.proc:
            code = self.proc.returncode
        self._close_channel()
        return code

    def _close_channel(self):
        """After the process ended: closes the channel and the log file handle."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def cleanup(self):
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()
        return False
