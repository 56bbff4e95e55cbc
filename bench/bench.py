#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark orchestrator (called by bench/run.sh).

Every case runs one back-end (ours, qemu-storage-daemon or DPDK testpmd) and drives it with the
one front-end, vhbench. Two measurements per case:

  callgrind  the back-end runs under `valgrind --tool=callgrind`; vhbench zeroes the counters
             (callgrind_control -z) before a window of exactly N requests and dumps them
             (callgrind_control -d) after it, then does the same around an idle window. Empty
             polls inside the loaded window are counted (calls of the back-end's poll function
             minus calls of its completion function) and priced by the idle window, then
             subtracted. Result: back-end instructions per request, whole process and in the
             ring-layer entry points.
  wall       the back-end runs natively on CPU 1, vhbench on CPU 0; requests per second over
             several windows, median, min and max. Only when the machine is idle.

Results go to bench/results/<date>.md (and a profile per case of ours under
bench/results/<date>-profile/).
"""
import argparse
import datetime
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cgparse  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BACKEND_CPU = '1'
DRIVER_CPU = '0'

# ---- Back-ends ------------------------------------------------------------------------------


class Backend:
    """How to start one back-end, and which functions mark its polls and its work.

    poll: called once per poll of a queue, empty or not (the pop); work: the functions called
    once per poll that found work (the push), or BURST when nothing marks a working poll and
    each is a full burst of 32 (DPDK rxonly frees mbufs inline); ring: the ring-layer entry
    points (pop, push, notify or their equivalents). poll None: the back-end sleeps when idle
    (no empty polls to subtract). Empty polls in a window = calls(poll) - calls(work)."""

    def __init__(self, name, label, cmd, poll=None, work=None, ring=(), stop='signal',
                 cg_count=100000, wall_count=1000000, packed=True, ours=False):
        self.name, self.label, self.cmd = name, label, cmd
        self.poll, self.work, self.ring = poll, work, list(ring)
        self.stop, self.cg_count, self.wall_count = stop, cg_count, wall_count
        self.packed, self.ours = packed, ours


def testpmd_cmd(mode):
    def cmd(ctx, sock, case):
        q = case.get('queues', 1)
        return ['dpdk-testpmd', '--no-pci', '--no-huge', '-m', '512', '--no-telemetry',
                '--file-prefix', ctx.prefix(), '--lcores', '0@%s,1@%s' % (BACKEND_CPU, BACKEND_CPU),
                '--vdev', 'net_vhost0,iface=%s,queues=%d' % (sock, q),
                '--', '-i', '--nb-cores=1', '--forward-mode=' + mode, '--auto-start',
                '--burst=32', '--rxq=%d' % q, '--txq=%d' % q, '--total-num-mbufs=16384']
    return cmd


def qsd_cmd(kind):
    def cmd(ctx, sock, case):
        q = case.get('queues', 1)
        if kind == 'null':
            blk = ['--blockdev', 'driver=null-co,node-name=disk0,size=%d' % ctx.disk_bytes]
        else:
            blk = ['--blockdev', 'driver=file,filename=%s,node-name=f0' % ctx.disk_image(),
                   '--blockdev', 'driver=raw,file=f0,node-name=disk0']
        return ['qemu-storage-daemon'] + blk + [
            '--export', 'type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,'
            'addr.path=%s,writable=on,num-queues=%d' % (sock, q)]
    return cmd


def ours_blk_cmd(kind, poll_us):
    def cmd(ctx, sock, case):
        c = [ctx.exe('tools/vhost-user-blk'), '--socket-path=' + sock, '--threads=1',
             '--num-queues=%d' % max(case.get('queues', 1), 1), '--poll-us=%d' % poll_us,
             '--quiet']
        if kind == 'null':
            c += ['--null', '--size=%d' % ctx.disk_bytes]
        else:
            c += ['--blk-file=' + ctx.disk_image()]
        return c
    return cmd


def ours_net_cmd(poll_us):
    def cmd(ctx, sock, case):
        return [ctx.exe('tools/vhost-user-net'), '--socket-path=' + sock, '--echo', '--threads=1',
                '--queue-pairs=%d' % case.get('queues', 1), '--poll-us=%d' % poll_us, '--quiet']
    return cmd


def ring_cmd(ctx, sock, case):
    return [ctx.exe('bench/vhbench-ring'), '--socket', sock, '--queues', '4']


def sring_cmd(poll_us):
    def cmd(ctx, sock, case):
        return [ctx.exe('bench/vhbench-sring'), '--socket', sock, '--queues', '4',
                '--poll-us', str(poll_us)]
    return cmd


# Our server framework: vhp_queue_run() is one poll of one queue; the device pushes through
# vh_server_queue_push_locked() (or _push) once per batch it completes.
SERVER_RING = ['vh_server_queue_pop', 'vh_server_queue_push_locked', 'vh_server_queue_push',
               'vh_server_queue_notify']
BURST = 'burst'
# The framework's worker (src/server_run.c) waits in epoll_wait() once per loop iteration and
# reads the clock once per iteration plus once more when the iteration did work, so
# calls(clock_gettime) - calls(epoll_wait) counts the iterations that found work. Checked
# against the bounds 0..calls(epoll_wait); outside them nothing is subtracted (and the report
# says so).
SERVER_ITER = 'server-iteration'
# Busy-poll for 1 s (the tools' maximum) after the last request; the idle window (300 ms)
# starts well within that second.
POLL_US = 1000000

BACKENDS = {b.name: b for b in [
    Backend('ring', 'libvhost ring layer only (bench/vhbench-ring: backend.h + ring.h)', ring_cmd,
            poll='ring_poll', work=['vh_vq_push_batch'],
            ring=['vh_vq_pop_batch', 'vh_vq_push_batch', 'vh_vq_should_notify'],
            cg_count=200000, wall_count=2000000, ours=True),
    Backend('sring', 'libvhost server framework (bench/vhbench-sring: server.h, busy-poll)',
            sring_cmd(POLL_US), poll='epoll_wait', work=SERVER_ITER,
            ring=SERVER_RING, cg_count=200000, wall_count=2000000, ours=True),
    Backend('dpdk-rxonly', 'DPDK 22.11 testpmd net_vhost, rxonly', testpmd_cmd('rxonly'),
            poll='rte_vhost_dequeue_burst', work=BURST,
            ring=['rte_vhost_dequeue_burst'], stop='quit', cg_count=100000),
    Backend('dpdk-io', 'DPDK 22.11 testpmd net_vhost, io forwarding', testpmd_cmd('io'),
            poll='rte_vhost_dequeue_burst', work=['rte_vhost_enqueue_burst'],
            ring=['rte_vhost_dequeue_burst', 'rte_vhost_enqueue_burst'], stop='quit',
            cg_count=100000),
    Backend('qsd-null', 'qemu-storage-daemon 7.2 null-co (libvhost-user)', qsd_cmd('null'),
            ring=['vu_queue_pop', 'vu_queue_push', 'vu_queue_notify'], cg_count=30000,
            wall_count=300000, packed=False),
    Backend('qsd-file', 'qemu-storage-daemon 7.2 raw file (aio=threads, page cache)',
            qsd_cmd('file'), ring=['vu_queue_pop', 'vu_queue_push', 'vu_queue_notify'],
            cg_count=20000, wall_count=200000, packed=False),
    Backend('blk-null', 'libvhost vhost-user-blk --null, busy-poll', ours_blk_cmd('null', POLL_US),
            poll='epoll_wait', work=SERVER_ITER, ring=SERVER_RING,
            cg_count=100000, ours=True),
    Backend('blk-null-ev', 'libvhost vhost-user-blk --null, kicks (no polling)',
            ours_blk_cmd('null', 0), ring=SERVER_RING, cg_count=50000, wall_count=300000,
            ours=True),
    Backend('blk-file', 'libvhost vhost-user-blk on a file (io_uring), kicks',
            ours_blk_cmd('file', 0), ring=SERVER_RING, cg_count=20000, wall_count=200000,
            ours=True),
    Backend('net-echo', 'libvhost vhost-user-net --echo, busy-poll', ours_net_cmd(POLL_US),
            poll='epoll_wait', work=SERVER_ITER, ring=SERVER_RING,
            cg_count=100000, ours=True),
]}

# ---- Cases ---------------------------------------------------------------------------------


def case(cid, backend, workload, **kw):
    c = dict(id=cid, backend=backend, workload=workload)
    c.update(kw)
    return c


def vhbench_args(c):
    # Deep enough that a back-end finds full bursts of 32 (as DPDK's figures assume) for the
    # ring and net workloads; 32 requests in flight for blk, a usual guest queue depth.
    depth = c.get('depth', 32 if c['workload'] == 'blk' else 128)
    a = ['--workload', c['workload'], '--queues', str(c.get('queues', 1)),
         '--depth', str(depth), '--regions', str(c.get('regions', 1))]
    if c.get('packed'):
        a.append('--packed')
    if c.get('size'):
        a += ['--size', str(c['size'])]
    if c.get('write'):
        a.append('--write')
    if c.get('qsize'):
        a += ['--qsize', str(c['qsize'])]
    return a


def main_cases():
    """(section, title, ours case, anchor case) rows of the main table."""
    rows = []
    for ring in ('split', 'packed'):
        p = ring == 'packed'
        rows.append(('W0 ring only', ring, case('w0-ring-' + ring, 'ring', 'ring', packed=p),
                     case('w0-dpdk-' + ring, 'dpdk-rxonly', 'tx', packed=p)))
        rows.append(('W0 ring only (server framework)', ring,
                     case('w0-sring-' + ring, 'sring', 'ring', packed=p), None))
    for op in ('read', 'write'):
        w = op == 'write'
        rows.append(('W1 null-blk 4 KiB ' + op + ', polling', 'split',
                     case('w1-null-%s' % op, 'blk-null', 'blk', write=w),
                     case('w1-qsd-null-%s' % op, 'qsd-null', 'blk', write=w)))
        rows.append(('W1 null-blk 4 KiB ' + op + ', kicks', 'split',
                     case('w1-nullev-%s' % op, 'blk-null-ev', 'blk', write=w),
                     case('w1-qsd-null-%s' % op, 'qsd-null', 'blk', write=w)))
        rows.append(('W1 file 4 KiB ' + op + ', kicks', 'split',
                     case('w1-file-%s' % op, 'blk-file', 'blk', write=w),
                     case('w1-qsd-file-%s' % op, 'qsd-file', 'blk', write=w)))
    rows.append(('W1 null-blk 4 KiB read, polling', 'packed',
                 case('w1-null-read-packed', 'blk-null', 'blk', packed=True), None))
    for ring in ('split', 'packed'):
        p = ring == 'packed'
        rows.append(('W2 64 B forward', ring, case('w2-echo-' + ring, 'net-echo', 'net', packed=p),
                     case('w2-dpdk-' + ring, 'dpdk-io', 'net', packed=p)))
    return rows


def scaling_cases():
    """(parameter, value, ours case, anchor case or None)."""
    rows = []
    # DPDK 22.11 takes at most 8 regions and qemu-storage-daemon 7.2 at most 32: beyond, the
    # anchor row shows the refusal.
    for r in (1, 8, 64, 509):
        rows.append(('W0 memory regions', r, case('s-w0-reg%d' % r, 'ring', 'ring', regions=r),
                     None))
        rows.append(('W1 null memory regions', r,
                     case('s-w1-reg%d' % r, 'blk-null', 'blk', regions=r),
                     case('s-w1qsd-reg%d' % r, 'qsd-null', 'blk', regions=r)))
        rows.append(('W2 memory regions', r, case('s-w2-reg%d' % r, 'net-echo', 'net', regions=r),
                     case('s-w2dpdk-reg%d' % r, 'dpdk-io', 'net', regions=r)))
    for q in (1, 2, 4):
        rows.append(('W0 queues', q, case('s-w0-q%d' % q, 'ring', 'ring', queues=q), None))
        rows.append(('W2 queue pairs', q, case('s-w2-q%d' % q, 'net-echo', 'net', queues=q),
                     case('s-w2dpdk-q%d' % q, 'dpdk-io', 'net', queues=q)))
    for d in (1, 32, 128):
        rows.append(('W0 depth', d, case('s-w0-d%d' % d, 'ring', 'ring', depth=d), None))
        rows.append(('W1 null depth', d, case('s-w1-d%d' % d, 'blk-null', 'blk', depth=d),
                     case('s-w1qsd-d%d' % d, 'qsd-null', 'blk', depth=d)))
        rows.append(('W2 depth', d, case('s-w2-d%d' % d, 'net-echo', 'net', depth=d),
                     case('s-w2dpdk-d%d' % d, 'dpdk-io', 'net', depth=d)))
    for sz in (512, 4096, 16384, 65536):
        rows.append(('W1 null read size', sz, case('s-w1-sz%d' % sz, 'blk-null', 'blk', size=sz),
                     case('s-w1qsd-sz%d' % sz, 'qsd-null', 'blk', size=sz)))
        rows.append(('W1 file read size', sz,
                     case('s-w1f-sz%d' % sz, 'blk-file', 'blk', size=sz),
                     case('s-w1fqsd-sz%d' % sz, 'qsd-file', 'blk', size=sz)))
    return rows


# ---- Running -------------------------------------------------------------------------------


class Skip(Exception):
    pass


class Ctx:
    def __init__(self, args):
        self.args = args
        self.build = args.build
        self.tmp = tempfile.mkdtemp(prefix='vhbench.')
        self.disk_bytes = 64 << 20
        self._img = None
        self._n = 0
        self.prefixes = []
        self.waited = False
        self.log = open(os.path.join(self.tmp, 'bench.log'), 'w')

    def exe(self, rel):
        return os.path.join(self.build, rel)

    def prefix(self):
        self._n += 1
        p = 'vhb%d_%d' % (os.getpid(), self._n)
        self.prefixes.append(p)
        return p

    def disk_image(self):
        if not self._img:
            self._img = os.path.join(self.tmp, 'disk.img')
            with open(self._img, 'wb') as f:
                f.write(b'\0' * self.disk_bytes)
        return self._img

    def note(self, msg):
        self.log.write(msg + '\n')
        self.log.flush()
        if self.args.verbose:
            sys.stderr.write(msg + '\n')

    def cleanup(self):
        for p in self.prefixes:
            shutil.rmtree('/var/run/dpdk/' + p, ignore_errors=True)
        if not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


class BackendProc:
    def __init__(self, ctx, be, c, sock, callgrind_out=None, cpu=BACKEND_CPU, wait=None):
        self.ctx, self.be = ctx, be
        argv = be.cmd(ctx, sock, c)
        pre = ['taskset', '-c', cpu]
        if callgrind_out:
            pre += ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + callgrind_out]
        self.logpath = os.path.join(ctx.tmp, 'backend-%s.log' % c['id'])
        self.logf = open(self.logpath, 'w')
        self.fifo_w = None
        stdin = subprocess.DEVNULL
        if be.stop == 'quit':
            fifo = os.path.join(ctx.tmp, 'fifo-%s' % c['id'])
            if os.path.exists(fifo):
                os.unlink(fifo)
            os.mkfifo(fifo)
            # Open both ends here so testpmd's interactive prompt never sees end of file.
            rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            self.fifo_w = os.open(fifo, os.O_WRONLY)
            os.set_blocking(rfd, True)
            stdin = rfd
        ctx.note('backend: ' + ' '.join(shlex.quote(x) for x in pre + argv))
        self.p = subprocess.Popen(pre + argv, stdin=stdin, stdout=self.logf,
                                  stderr=subprocess.STDOUT)
        if stdin != subprocess.DEVNULL:
            os.close(stdin)
        if wait is not None:
            # no socket to wait for (a front-end): give it this long, then check it runs
            time.sleep(wait)
            if self.p.poll() is not None:
                raise Skip('exited at start (%s)' % self.tail())
            return
        deadline = time.time() + 120
        while not os.path.exists(sock):
            if self.p.poll() is not None:
                raise Skip('back-end exited at start (%s)' % self.tail())
            if time.time() > deadline:
                self.stop()
                raise Skip('back-end socket did not appear')
            time.sleep(0.1)
        time.sleep(0.2)

    def tail(self, n=3):
        try:
            with open(self.logpath) as f:
                return ' | '.join(f.read().strip().splitlines()[-n:])
        except OSError:
            return ''

    def send(self, text):
        if self.fifo_w is not None:
            os.write(self.fifo_w, text.encode())

    def stop(self):
        if self.p.poll() is None:
            if self.be.stop == 'quit':
                self.send('quit\n')
            else:
                self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.fifo_w is not None:
            os.close(self.fifo_w)
            self.fifo_w = None
        self.logf.close()


def run_vhbench(ctx, c, sock, extra, timeout):
    argv = ['taskset', '-c', DRIVER_CPU, ctx.exe('bench/vhbench'), '--socket', sock] + \
        vhbench_args(c) + extra
    ctx.note('driver: ' + ' '.join(shlex.quote(x) for x in argv))
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise Skip('driver timed out after %d s' % timeout)
    ctx.note(r.stdout + r.stderr)
    if r.returncode == 3:
        raise Skip(r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'not supported')
    if r.returncode != 0:
        msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else 'rc %d' % r.returncode
        raise Skip('driver failed: ' + msg)
    runs = [dict(kv.split('=', 1) for kv in line.split()) for line in r.stdout.splitlines()
            if line.startswith('run=')]
    idle = [dict(kv.split('=', 1) for kv in line.split()) for line in r.stdout.splitlines()
            if line.startswith('idle_ms=')]
    return runs, idle


def measure_callgrind(ctx, c):
    be = BACKENDS[c['backend']]
    n = be.cg_count // (5 if ctx.args.quick else 1)
    sock = os.path.join(ctx.tmp, '%s.sock' % c['id'])
    out = os.path.join(ctx.tmp, 'cg-%s.out' % c['id'])
    for f in os.listdir(ctx.tmp):
        if f.startswith('cg-%s.out' % c['id']):
            os.unlink(os.path.join(ctx.tmp, f))
    bp = BackendProc(ctx, be, c, sock, callgrind_out=out)
    try:
        pid = bp.p.pid
        hook_on = 'callgrind_control -z %d >/dev/null 2>&1' % pid
        hook_off = 'callgrind_control -d %d >/dev/null 2>&1' % pid
        runs, idle = run_vhbench(ctx, c, sock, ['--count', str(n), '--runs', '1',
                                                 '--idle-ms', '300', '--on-start', hook_on,
                                                 '--on-stop', hook_off, '--timeout-s', '60'],
                                 timeout=900)
    finally:
        bp.stop()
    if not os.path.exists(out + '.1') or not os.path.exists(out + '.2'):
        raise Skip('no callgrind dumps')
    total, fns = cgparse.parse(out + '.1')
    itotal, ifns = cgparse.parse(out + '.2')
    res = dict(n=n, total=total, idle_total=itotal, window_ns=int(runs[0]['ns']),
               idle_ns=int(idle[0]['ns']), drv_cpu=float(runs[0].get('drv_cpu', 'nan')))
    ring_in = sum(cgparse.lookup(fns, f)[1] for f in be.ring)
    ring_idle = sum(cgparse.lookup(ifns, f)[1] for f in be.ring)
    if be.poll:
        p_calls = cgparse.lookup(fns, be.poll)[0]
        if be.work == BURST:
            w_calls = -(-n // 32)
        elif be.work == SERVER_ITER:
            clk = sum(e[0] for name, e in fns.items() if name.startswith('clock_gettime'))
            w_calls = clk - p_calls
            if not 0 <= w_calls <= p_calls:
                res['warn'] = 'iteration count unusable (%d clock reads, %d waits)' % (
                    clk, p_calls)
                w_calls = p_calls
        else:
            w_calls = sum(cgparse.lookup(fns, f)[0] for f in be.work)
        pi = cgparse.lookup(ifns, be.poll)[0]
        empty = max(p_calls - w_calls, 0)
        c_proc = itotal / pi if pi else 0.0
        c_ring = ring_idle / pi if pi else 0.0
        res.update(polls=p_calls, empty=empty, empty_cost=c_proc)
        res['ir_proc'] = (total - empty * c_proc) / n
        res['ir_ring'] = (ring_in - empty * c_ring) / n
        scale = empty / pi if pi else 0.0
    else:
        # Sleeps when idle: whatever it does per second of idleness (timers) is negligible
        # but subtracted in proportion anyway.
        rate = itotal / res['idle_ns'] if res['idle_ns'] else 0.0
        res.update(polls=0, empty=0, empty_cost=0.0)
        res['ir_proc'] = (total - rate * res['window_ns']) / n
        res['ir_ring'] = ring_in / n
        scale = res['window_ns'] / res['idle_ns'] if res['idle_ns'] else 0.0
    # Per-function self cost per request, idle share removed.
    prof = []
    for name, e in fns.items():
        own = e[2] - scale * (ifns[name][2] if name in ifns else 0)
        if own > 0:
            prof.append((own / n, name))
    prof.sort(reverse=True)
    res['profile'] = prof[:25]
    res['incl'] = {f: cgparse.lookup(fns, f) for f in be.ring + ([be.poll] if be.poll else [])}
    if ctx.args.keep_dumps:
        d = ctx.args.profile_dir
        os.makedirs(d, exist_ok=True)
        shutil.copy(out + '.1', os.path.join(d, 'callgrind.%s.out' % c['id']))
    return res


def cpu_busy_fraction(secs=1.0):
    def snap():
        with open('/proc/stat') as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    t0, i0 = snap()
    time.sleep(secs)
    t1, i1 = snap()
    return 1.0 - (i1 - i0) / max(t1 - t0, 1)


POLLERS = re.compile(r'^(dpdk-testpmd|qemu-storage-d|qemu-system-|vhost-user-|vhbench|'
                     r'callgrind-|memcheck-|valgrind)')


def machine_idle():
    others = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/comm' % pid) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if POLLERS.match(comm):
            others.append(comm)
    busy = cpu_busy_fraction()
    with open('/proc/loadavg') as f:
        load = f.read().split()[0]
    if others:
        return False, 'other benchmark/peer processes running: ' + ', '.join(sorted(set(others))), load
    if busy > 0.10:
        return False, 'CPUs %.0f%% busy' % (busy * 100), load
    return True, 'idle', load


def measure_wall(ctx, c):
    be = BACKENDS[c['backend']]
    # Wait for an idle machine once per run; after that a busy machine skips the case at once.
    deadline = time.time() + (0 if ctx.waited else ctx.args.idle_wait)
    while True:
        ok, why, load = machine_idle()
        if ok or ctx.args.wall_force:
            break
        if time.time() > deadline:
            ctx.waited = True
            raise Skip('not idle: ' + why)
        time.sleep(5)
    n = be.wall_count // (5 if ctx.args.quick else 1)
    sock = os.path.join(ctx.tmp, '%s.wall.sock' % c['id'])
    bp = BackendProc(ctx, be, c, sock)
    try:
        runs, _ = run_vhbench(ctx, c, sock, ['--count', str(n), '--runs', str(ctx.args.runs),
                                             '--timeout-s', '30'], timeout=600)
    finally:
        bp.stop()
    ok2, why2, load2 = machine_idle()
    rps = sorted(float(r['rps']) for r in runs)
    med = rps[len(rps) // 2] if len(rps) % 2 else (rps[len(rps) // 2 - 1] + rps[len(rps) // 2]) / 2
    return dict(median=med, min=rps[0], max=rps[-1], runs=len(rps), load=load,
                idle_after=ok2 or ctx.args.wall_force, why_after=why2)


def measure(ctx, c, cache):
    if c['id'] in cache:
        return cache[c['id']]
    be = BACKENDS[c['backend']]
    res = dict(case=c, backend=be)
    if c.get('packed') and not be.packed:
        res['skip'] = 'no packed rings'
    elif be.ours and not os.path.exists(be.cmd(ctx, '/x', c)[0]):
        res['skip'] = 'not built (%s)' % os.path.relpath(be.cmd(ctx, '/x', c)[0], ctx.build)
    else:
        t0 = time.time()
        if not ctx.args.no_callgrind:
            try:
                res['cg'] = measure_callgrind(ctx, c)
            except Skip as e:
                res['skip'] = str(e)
        if not ctx.args.no_wall and 'skip' not in res:
            try:
                res['wall'] = measure_wall(ctx, c)
            except Skip as e:
                res['wall_skip'] = str(e)
        res['secs'] = time.time() - t0
    msg = '%-22s %-12s' % (c['id'], c['backend'])
    if 'cg' in res:
        msg += ' %8.0f Ir/req (ring %6.0f, %d empty polls, driver ran %.0f%%)' % (
            res['cg']['ir_proc'], res['cg']['ir_ring'], res['cg']['empty'],
            100 * res['cg']['drv_cpu'])
        if res['cg'].get('warn'):
            msg += ' [%s]' % res['cg']['warn']
    if 'wall' in res:
        msg += ' %8.2f Mreq/s' % (res['wall']['median'] / 1e6)
    if 'skip' in res:
        msg += ' skipped: ' + res['skip']
    if 'wall_skip' in res:
        msg += ' (wall: %s)' % res['wall_skip']
    print(msg, flush=True)
    ctx.note(msg)
    cache[c['id']] = res
    return res


# ---- DPDK <-> DPDK anchor pair ---------------------------------------------------------------


def anchor_pair(ctx, packed):
    """testpmd net_vhost (io forwarding, under callgrind) fed by testpmd net_virtio_user
    (flowgen, 64 B, native): the anchors' own pair, per-direction Ir per packet. First an idle
    window (front-end connected, not sending) prices an empty dequeue poll."""
    cid = 'anchor-' + ('packed' if packed else 'split')
    sock = os.path.join(ctx.tmp, cid + '.sock')
    out = os.path.join(ctx.tmp, 'cg-%s.out' % cid)
    be = BACKENDS['dpdk-io']
    a = BackendProc(ctx, be, case(cid, 'dpdk-io', 'net'), sock, callgrind_out=out)
    vdev = 'net_virtio_user0,path=%s,queues=1,mrg_rxbuf=0,in_order=0%s' % (
        sock, ',packed_vq=1' if packed else '')
    fe = Backend('virtio-user', 'DPDK net_virtio_user', lambda ctx_, s_, c_: [
        'dpdk-testpmd', '--no-pci', '--no-huge', '-m', '512', '--no-telemetry',
        '--file-prefix', ctx.prefix(), '--lcores', '0@%s,1@%s' % (DRIVER_CPU, DRIVER_CPU),
        '--vdev', vdev, '--', '-i', '--nb-cores=1', '--forward-mode=flowgen', '--txpkts=64',
        '--burst=32', '--total-num-mbufs=16384'], stop='quit')
    b = None
    pid = a.p.pid

    def cgctl(flag):
        subprocess.run(['callgrind_control', flag, str(pid)], capture_output=True, timeout=120)
    try:
        # the front-end has no socket of its own: wait on a marker file that never appears
        marker = os.path.join(ctx.tmp, cid + '.none')
        try:
            b = BackendProc(ctx, fe, case(cid + '-fe', 'virtio-user', 'net'), marker,
                            cpu=DRIVER_CPU, wait=8)
        except Skip:
            raise
        cgctl('-z')
        time.sleep(2)
        cgctl('-d')                       # dump 1: idle, connected
        b.send('start\n')
        time.sleep(3)
        a.send('clear port stats all\n')
        cgctl('-z')
        time.sleep(5 if ctx.args.quick else 15)
        cgctl('-d')                       # dump 2: forwarding
        a.send('show port stats all\n')
        time.sleep(2)
        b.send('stop\n')
        time.sleep(1)
    finally:
        if b:
            b.stop()
        a.stop()
    # testpmd's output reaches the file when it exits; "show port stats" has its own format
    # (RX-missed / TX-errors), unlike the forward statistics printed on stop and quit.
    with open(a.logpath) as f:
        log = f.read()
    m = re.findall(r'RX-packets:\s*(\d+)\s+RX-missed.*?TX-packets:\s*(\d+)\s+TX-errors',
                   log, re.S)
    if not m or not os.path.exists(out + '.2'):
        raise Skip('no statistics or dump')
    rxp, txp = int(m[-1][0]), int(m[-1][1])
    itotal, ifns = cgparse.parse(out + '.1')
    total, fns = cgparse.parse(out + '.2')
    dq = cgparse.lookup(fns, 'rte_vhost_dequeue_burst')
    eq = cgparse.lookup(fns, 'rte_vhost_enqueue_burst')
    idq = cgparse.lookup(ifns, 'rte_vhost_dequeue_burst')
    c_empty = idq[1] / idq[0] if idq[0] else 0.0
    empty = max(dq[0] - eq[0], 0)
    return dict(rx=rxp, tx=txp, total=total, deq=dq, enq=eq, empty=empty, c_empty=c_empty,
                deq_ir=(dq[1] - empty * c_empty) / max(rxp, 1), enq_ir=eq[1] / max(txp, 1))


# ---- Report --------------------------------------------------------------------------------


def fmt_ir(res):
    if 'cg' not in res:
        return 'n/a'
    return '%.0f' % res['cg']['ir_proc']


def fmt_ring(res):
    if 'cg' not in res:
        return 'n/a'
    return '%.0f' % res['cg']['ir_ring']


def fmt_wall(res):
    w = res.get('wall')
    if not w:
        return '—'
    s = '%.2f [%.2f–%.2f]' % (w['median'] / 1e6, w['min'] / 1e6, w['max'] / 1e6)
    if not w['idle_after']:
        s += ' (busy)'
    return s


def ratio(a, b):
    if 'cg' not in a or not b or 'cg' not in b or b['cg']['ir_proc'] <= 0:
        return '—'
    return '%.2f' % (a['cg']['ir_proc'] / b['cg']['ir_proc'])


def machine_line():
    cpu = 'unknown CPU'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    return '%s, %d CPUs, kernel %s' % (cpu, os.cpu_count() or 0, platform.release())


def report(ctx, main_rows, scale_rows, anchors, started):
    L = []
    date = started.strftime('%Y-%m-%d %H:%M')
    L.append('# libvhost benchmarks, %s' % date)
    L.append('')
    L.append('Machine: %s. Commit: %s.%s' % (machine_line(), ctx.rev,
                                             ' Quick run (counts / 5).' if ctx.args.quick else ''))
    L.append('')
    L.append('Ir/req = back-end instructions per request (callgrind, whole process, empty polls '
             'subtracted); "ring" = the part inside the ring-layer entry points (ours: '
             'pop/push/notify; DPDK: rte_vhost_{dequeue,enqueue}_burst; qemu-storage-daemon: '
             'vu_queue_{pop,push,notify}). Ratio = ours / anchor (Ir/req, lower is better). '
             'Mreq/s = median [min–max] of %d windows, back-end on CPU %s, driver on CPU %s, '
             'only when the machine was idle.' % (ctx.args.runs, BACKEND_CPU, DRIVER_CPU))
    L.append('')
    L.append('| Workload | Ring | Ours | Ir/req | ring | Anchor | Ir/req | ring | Ratio | '
             'Ours Mreq/s | Anchor Mreq/s |')
    L.append('|---|---|---|---:|---:|---|---:|---:|---:|---|---|')
    for sec, ring, o, a in main_rows:
        ob = o['backend']
        ab = a['backend'] if a else None
        L.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            sec, ring, ob.name + skipnote(o), fmt_ir(o), fmt_ring(o),
            (ab.name + skipnote(a)) if a else '—', fmt_ir(a) if a else '—',
            fmt_ring(a) if a else '—', ratio(o, a), fmt_wall(o), fmt_wall(a) if a else '—'))
    L.append('')
    if anchors:
        L.append('DPDK ↔ DPDK anchor pair (net_virtio_user flowgen → net_vhost io forwarding → '
                 'back; 64 B, non-mergeable), Ir per packet inside each burst function, against '
                 'reference/anchors.md §3d (split: enqueue 377, dequeue ≈ 288 after empty polls; '
                 'packed: enqueue 159):')
        L.append('')
        L.append('| Ring | packets | enqueue Ir/pkt | dequeue Ir/pkt | empty dequeue polls '
                 '(Ir each) | anchors.md §3d |')
        L.append('|---|---:|---:|---:|---:|---|')
        ref = {'split': 'enqueue 377, dequeue 286–289', 'packed': 'enqueue 159, dequeue ≈ 170–200'}
        for ring, an in anchors:
            if 'skip' in an:
                L.append('| %s | skipped: %s | | | | |' % (ring, an['skip']))
                continue
            L.append('| %s | %d | %.0f | %.0f | %d (%.0f) | %s |' % (
                ring, an['tx'], an['enq_ir'], an['deq_ir'], an['empty'], an['c_empty'],
                ref[ring]))
        L.append('')
    if scale_rows:
        L.append('## Scaling (callgrind Ir/req, whole back-end process)')
        L.append('')
        L.append('| Parameter | Value | Ours | Ir/req | ring | Anchor | Ir/req | Ratio |')
        L.append('|---|---:|---|---:|---:|---|---:|---:|')
        for par, val, o, a in scale_rows:
            L.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
                par, val, o['backend'].name + skipnote(o), fmt_ir(o), fmt_ring(o),
                (a['backend'].name + skipnote(a)) if a else '—', fmt_ir(a) if a else '—',
                ratio(o, a)))
        L.append('')
    prof = [(sec, ring, o) for sec, ring, o, _ in main_rows if 'cg' in o]
    if prof:
        L.append('## Where our instructions go (self Ir per request, idle share removed)')
        L.append('')
        for sec, ring, o in prof:
            L.append('**%s, %s (%s)**: ' % (sec, ring, o['backend'].name) + ', '.join(
                '%s %.0f' % (name, ir) for ir, name in o['cg']['profile'][:10] if ir >= 1))
            L.append('')
    L.append('Back-ends: ' + '; '.join('`%s` %s' % (b.name, b.label) for b in BACKENDS.values()) + '.')
    L.append('')
    return '\n'.join(L)


def skipnote(r):
    if 'skip' in r:
        return ' (%s)' % r['skip']
    return ''


def git_rev():
    """The commit, and the source files that differed from it when the run started (the tree
    is shared, so a run may include someone's work in progress)."""
    if os.environ.get('BENCH_REV'):
        return subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short',
                               os.environ['BENCH_REV']], capture_output=True,
                              text=True).stdout.strip() or os.environ['BENCH_REV']
    try:
        rev = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'],
                             capture_output=True, text=True).stdout.strip() or 'unknown'
        dirty = subprocess.run(['git', '-C', ROOT, 'status', '--porcelain', '--', 'src',
                                'include', 'tools', 'bench/*.c'],
                               capture_output=True, text=True).stdout.split('\n')
    except OSError:
        return 'unknown'
    files = [line[3:] for line in dirty if line[:2].strip() in ('M', 'A', 'MM', 'AM')]
    if files:
        rev += ' plus uncommitted changes to ' + ', '.join(files)
    return rev


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', required=True)
    ap.add_argument('--out', default=None, help='result file (default bench/results/<date>.md)')
    ap.add_argument('--quick', action='store_true', help='counts / 5, main table only')
    ap.add_argument('--only', default=None, help='regex on case ids')
    ap.add_argument('--no-scaling', action='store_true')
    ap.add_argument('--no-anchor', action='store_true')
    ap.add_argument('--no-wall', action='store_true')
    ap.add_argument('--no-callgrind', action='store_true')
    ap.add_argument('--wall-force', action='store_true', help='measure wall clock even if busy')
    ap.add_argument('--idle-wait', type=int, default=30, help='seconds to wait for an idle machine')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--keep-dumps', action='store_true', help='copy our callgrind dumps next to the result')
    ap.add_argument('--verbose', '-v', action='store_true')
    args = ap.parse_args()
    started = datetime.datetime.now()
    if not args.out:
        os.makedirs(os.path.join(HERE, 'results'), exist_ok=True)
        args.out = os.path.join(HERE, 'results', started.strftime('%Y-%m-%d') +
                                ('-quick' if args.quick else '') + '.md')
    args.profile_dir = os.path.splitext(args.out)[0] + '-dumps'
    ctx = Ctx(args)
    ctx.rev = git_rev()
    cache = {}
    sel = re.compile(args.only) if args.only else None
    try:
        main_rows = []
        for sec, ring, o, a in main_cases():
            if sel and not sel.search(o['id']) and not (a and sel.search(a['id'])):
                continue
            ro = measure(ctx, o, cache)
            ra = measure(ctx, a, cache) if a else None
            main_rows.append((sec, ring, ro, ra))
        anchors = []
        if not args.no_anchor and not args.no_callgrind and (not sel or sel.search('anchor')):
            for packed in (False, True):
                ring = 'packed' if packed else 'split'
                try:
                    anchors.append((ring, anchor_pair(ctx, packed)))
                except Skip as e:
                    anchors.append((ring, dict(skip=str(e))))
                print('anchor %s done' % ring, flush=True)
        scale_rows = []
        if not args.no_scaling and not args.quick and not args.no_callgrind:
            for par, val, o, a in scaling_cases():
                if sel and not sel.search(o['id']) and not (a and sel.search(a['id'])):
                    continue
                saved = args.no_wall
                args.no_wall = True  # scaling is callgrind only
                ro = measure(ctx, o, cache)
                ra = measure(ctx, a, cache) if a else None
                args.no_wall = saved
                scale_rows.append((par, val, ro, ra))
        text = report(ctx, main_rows, scale_rows, anchors, started)
        with open(args.out, 'w') as f:
            f.write(text)
        print('\n' + text)
        print('written to ' + os.path.relpath(args.out, os.getcwd()))
    finally:
        ctx.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
