"""``benchmarks/perf_profile.py``: perf's report is sorted into the same categories for every system."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "perf_profile.py"

# the shape of ``perf report --no-children --sort dso,sym --stdio -g none -n -t ';'``: 1000 samples
REPORT = """\
# Samples: 1K of event 'cpu-clock'
#
# Overhead;Samples;Shared Object;Symbol
#
    40.00%  ; 400        ;[JIT] tid 4242                                    ;[.] 0x00007f3366c6608f
    10.00%  ; 100        ;[JIT] tid 4242                                    ;[.] 0x00007f3366c66100
    12.50%  ; 125        ;libtorch_cpu.so                                   ;[.] mkl_blas_def_xsgemv
     7.50%  ; 75         ;libpython3.11.so.1.0                              ;[.] _PyEval_EvalFrameDefault
     6.00%  ; 60         ;libc.so.6                                         ;[.] __memmove_avx512_unaligned_erms
     5.00%  ; 50         ;libtorch_cpu.so                                   ;[.] at::native::AVX512::serial_vec_log_softmax_lastdim_range<float>
     4.00%  ; 40         ;libtorch_cpu.so                                   ;[.] at::native::(anonymous namespace)::cpu_flash_attention<float, float, 32l, 512l, false>
     3.00%  ; 30         ;libgomp.so.1                                      ;[.] 0x000000000001e02a
     3.00%  ; 30         ;libtorch_python.so                                ;[.] torch::FunctionSignature::parse
     2.00%  ; 20         ;libc.so.6                                         ;[.] _int_malloc
     2.00%  ; 20         ;libctranslate2.so.4                               ;[.] ctranslate2::ops::TopK::compute<(ctranslate2::Device)0, float, int>
     2.00%  ; 20         ;libtorch_cpu.so                                   ;[.] c10::function_ref<void (char**, long const*, long, long)>::callback_fn<add>
     1.50%  ; 15         ;[kernel.kallsyms]                                 ;[k] clear_page_erms
     1.50%  ; 15         ;libfoo.so                                         ;[.] something_else
"""


def load_script():
    spec = importlib.util.spec_from_file_location("perf_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_categories_add_up_and_follow_the_rules():
    perf_profile = load_script()
    counts = perf_profile.categorize(REPORT)
    assert sum(counts.values()) == 1000  # every sample line lands in exactly one category
    assert counts == {
        "GEMM: oneDNN JIT kernels": 500,  # JIT addresses summed
        "GEMM/GEMV: MKL": 125, "Python interpreter": 75, "copies, gathers, concat": 60,
        "softmax / log-softmax / exp": 50, "attention kernel (torch flash)": 40,
        "OpenMP runtime (spin-wait, barriers)": 30, "torch dispatch and bindings": 30, "malloc / free": 20,
        "top-k": 20, "other torch kernels (element-wise, ...)": 20, "OS kernel": 15, perf_profile.OTHER: 15}


def test_busiest_symbols_merge_jit_code_and_name_unresolved_libraries():
    perf_profile = load_script()
    top = perf_profile.top_symbols(REPORT, 3)
    assert top == [(500, "oneDNN JIT code"), (125, "mkl_blas_def_xsgemv"), (75, "_PyEval_EvalFrameDefault")]
    names = [name for _, name in perf_profile.top_symbols(REPORT, 20)]
    assert "libgomp.so.1 (no symbol)" in names


def test_markdown_reports_cpu_seconds_per_run():
    perf_profile = load_script()
    counts = perf_profile.categorize(REPORT)
    hz = perf_profile.FREQUENCY
    text = perf_profile.markdown({"a": {"seconds": 1.5, "runs": 2, "counts": counts, "top": []},
                                  "b": {"seconds": 4.0, "runs": 1, "counts": {"GEMM: oneDNN JIT kernels": 4 * hz},
                                        "top": [(4 * hz, "oneDNN JIT code")]}}, "title")
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("| GEMM: oneDNN JIT kernels"))
    assert row == f"| GEMM: oneDNN JIT kernels | {500 / hz / 2:.2f} | 50.0 | 4.00 | 100.0 |"
    assert f"| **CPU total** | **{1000 / hz / 2:.2f}** | 100 | **4.00** | 100 |" in lines
    assert "| wall time of a run | 1.50 |  | 4.00 |  |" in lines
    assert not any(line.startswith("| layer norm") for line in lines)  # empty rows left out
    assert "b, busiest symbols: oneDNN JIT code 100.0 %" in lines


def test_without_perf_it_says_how_to_install_it(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no perf on this PATH
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "perf_profile: Linux perf is not installed; install it (Debian: apt-get install linux-perf) and run again"]
    assert done.stdout == ""


def test_an_unknown_system_is_refused_in_one_line():  # checked before perf is looked for
    done = subprocess.run([sys.executable, str(SCRIPT), "--systems", "fsmt_port,marian"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown ['marian']" in lines[0] and "fsmt_port" in lines[0]
