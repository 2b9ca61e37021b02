"""One API and command line to run provider reports and get their files and rows."""
