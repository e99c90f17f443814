"""The shared retrieval layer: embedding providers, vectors, ranking and nearest-neighbour search.

Memory (patterns, documents) and skills both build on it; it imports neither (only `tenants`
for the project a vector belongs to). Apps register the rows they embed here
(`retrieval.registry`), so re-embedding a project reaches every kind of row without the
re-embedding code importing the apps that own them.
"""
