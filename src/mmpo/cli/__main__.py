import sys

from mmpo.cli import main
from mmpo.distributed import end_process_group

code = main()
end_process_group()
sys.exit(code)
