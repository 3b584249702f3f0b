"""Third parties billing talks to, one package each; only that package knows the third party's SDK."""
