"""The benchmark harness behind ``benchmarks/run.py``, one job per module.

* ``workloads``: the inputs (models converted once, source ids, run configs);
* ``systems``: fsmt_port, transformers and CTranslate2 behind one interface;
* ``measure``: the timed loop and the rows it yields;
* ``memory``: RSS probes of this process and peak RSS of a child process (also used by
  ``rss_translate.py`` and ``stream_memory.py``);
* ``footprint``: peak-RSS measurements that need processes of their own;
* ``report``: the machine description, the Markdown table and the fairseq estimate.

``memory`` imports only the standard library, so a helper process can run it as a script.
"""
