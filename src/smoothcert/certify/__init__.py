"""Certification: the smoothed classifier and the ways to certify it.

- ``classifier``: ``SmoothedClassifier`` (PREDICT and fixed-n CERTIFY), ``Certificate``;
- ``adaptive``: CERTIFY with staged sampling that stops once the answer is settled;
- ``split_sample``: one input's samples split across the ranks of a process group;
- ``dataset``: certify or predict a whole dataset split into a results file.
"""
