"""`python -m bench` (`make bench`): our model API against `mlflow models serve` on the same model."""

from bench.compare import main

main()
