"""LangGraph graphs: the coevolution run and task forces, the work of their nodes, and commands.

- The graphs: ``coevolution.py`` (its state in ``state.py``) and ``taskforce.py``.
- What the coevolution nodes do, against the run's resources (``resources.py``, found
  through ``registry.py``): around every node ``watch.py`` and ``snapshots.py``; the
  population phases ``phases.py``, with ``niche_data.py`` for ``specialize`` and
  ``skill_matrix.py`` for every figure; the task pool ``task_flow.py`` (pipelined) and
  ``task_phases.py`` (micro-batches, with ``review.py``); the report node's summary
  ``summary.py`` with ``global_scores.py``, ``dynamics.py`` and ``diversity.py``.
- What a task force needs: ``taskforce_resources.py`` and ``completion.py``.
- Commands on the graphs: ``fork.py`` (``acdc run --fork``), ``webapp.py`` (``acdc
  taskforce serve``), ``coverage_eval.py`` with ``coverage_report.py`` (``acdc eval
  coverage``).

Logic that needs no run (grading, benchmark items, the judge's calibration, matrix
math) lives below, in ``agents/`` and ``population/``; ``tests/unit_tests/
test_import_layers.py`` keeps the imports one way.
"""
