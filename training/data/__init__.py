"""Bundled demo data sets (`dataset.path: bundled:<file>`); a package so wheels ship the files.

- digits.npz: the UCI optical recognition of handwritten digits test set as distributed with
  scikit-learn (1,797 8x8 images, pixel values 0-16; x uint8 [1797, 64], y int64 0-9). CC BY 4.0.
- iris.csv: Fisher's iris (150 rows, 4 measurements in cm, 3 species). UCI, CC BY 4.0.
- diabetes.csv: Efron et al. (2004), "Least Angle Regression" (442 patients, 10 baseline
  measurements, `progression` one year later), unscaled, as distributed with scikit-learn.
- intents.csv: 320 short customer-support messages in 4 intents (account, billing, delivery,
  technical), written for this project from hand-written phrases; public domain.
"""
