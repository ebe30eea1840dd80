"""Certification: the smoothed classifier and the ways to certify it, bottom to top.

- ``sampling``: the Monte Carlo engine (streams of T(x), grouped class counting, ``eval_mode``);
- ``certificate``: ``Certificate``, ``Prediction``, ``ABSTAIN`` and the one abstain rule
  (p_lower > 1/2, else abstain) every procedure ends in;
- ``fixed``: [CRK19] PREDICT and CERTIFY with all n samples;
- ``adaptive_rule`` and ``adaptive``: CERTIFY with staged sampling that stops once the answer is
  settled (the count-only stopping rule, and the procedure with its proof);
- ``split_sample``: one input's samples split across the ranks of a process group;
- ``deterministic``: smoothings enumerated rather than sampled (``noise.deterministic``);
- ``classifier``: ``SmoothedClassifier``, the facade whose ``certify_batch``/``predict_batch``
  decide in one place which procedure runs;
- ``dataset``: certify or predict a whole dataset split into a results file.

Nothing below ``classifier`` imports it at run time.
"""
