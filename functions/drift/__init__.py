"""The scheduled drift job: PSI / JS of each monitored version over a window, as EMF metrics."""
