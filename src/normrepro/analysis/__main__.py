from normrepro.analysis.cli import main

main()
