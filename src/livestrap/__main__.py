from livestrap.cli import main

main()
