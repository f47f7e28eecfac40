"""Steps of a trace and their ratings: the split into steps, reviewers' step ratings, and
what the review page and the API read of them."""
