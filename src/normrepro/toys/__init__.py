"""Self-contained optimization problems with known answers, run by instruments at step 0 of a carrier job
(``measure/ravine.py``, ``measure/saddle.py``): the training loop's loss is cross-entropy, these need their
own objectives."""
