"""The study report: one self-contained HTML file about several runs.

:mod:`~convscope.report.collect` gathers the results (runs, maps and scores, kernels,
feature maps, summaries, diagrams), :mod:`~convscope.report.verdict` ranks the models
by how well their hidden layer separates the classes, and :mod:`~convscope.report.page`
renders everything into HTML with the pictures inlined.
"""
