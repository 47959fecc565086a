"""What restores and uses stored runs: evaluate, translate, ensemble and average them."""
