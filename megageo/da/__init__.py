"""Generative data assimilation (STORM's one-stage DA): a score-based prior over windows of states, conditioned on
observations and sampled, instead of a Kalman filter's forecast–update cycle. `sde` holds the diffusion and its
sampler, `guidance` the two ways observations enter (SDA's Gaussian likelihood with the γ term, and moment-matching
posterior sampling with a few conjugate-gradient steps)."""
