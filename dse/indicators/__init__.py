"""Non-dominated sets and front quality (HV, IGD, curves) on a normalisation fixed by the problem."""
