"""From run directories to figures and verdicts: collect -> derive -> claims -> plots -> report."""
