"""Building blocks: radial bases, cutoff envelopes, equivariant convolution, product basis, interaction."""
