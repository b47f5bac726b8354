from mailinfra.metrics.service import main

main()
