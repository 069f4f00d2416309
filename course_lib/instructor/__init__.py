"""What an instructor reads after grading: the class report, the similarity check, grades for a learning platform.

- :mod:`.classdata`   one assignment's class read back: gradebook scores, part outcomes, answers, answer key
- :mod:`.stats`       item analysis: pass rate, difficulty, discrimination of each part
- :mod:`.similarity`  normalised tokens, winnowed fingerprints, matching lines
- :mod:`.report`      ``python -m course_lib.instructor.report ASSIGNMENT``: the HTML page and CSV files
- :mod:`.lms`         ``nbgrader export`` plugins writing Canvas and Moodle grade import files
"""
